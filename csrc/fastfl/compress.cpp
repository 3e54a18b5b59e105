// Compression kernels. The elementwise passes (sum of squares, QSGD, DGC) split over threads on
// multiples of 64 elements, so QSGD's bit stream of each chunk starts on a byte boundary; the
// selection and sparse passes touch k elements or one histogram and stay on one thread.
#include "fastfl/compress.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include "fastfl/parallel.hpp"
#include "fastfl/simd.hpp"

namespace fastfl::compress {

namespace {

[[gnu::always_inline]] inline std::uint32_t mix32(std::uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

// Magnitude key of x: the bits of |x| as an unsigned integer, ordered like |x| (NaN above Inf).
template <class T>
struct Key;
template <>
struct Key<float> {
    using U = std::uint32_t;
    static U of(float v) {
        U b;
        std::memcpy(&b, &v, sizeof b);
        return b & 0x7fffffffu;
    }
    static constexpr int kShift = 15;  // top 16 of the 31 magnitude bits
};
template <>
struct Key<double> {
    using U = std::uint64_t;
    static U of(double v) {
        U b;
        std::memcpy(&b, &v, sizeof b);
        return b & 0x7fffffffffffffffull;
    }
    static constexpr int kShift = 47;
};

[[gnu::always_inline]] inline double uniform_inline(std::uint64_t i, std::uint32_t k0, std::uint32_t k1) {
    std::uint32_t h = mix32(static_cast<std::uint32_t>(i) * 0x9e3779b9u + k0);
    h = mix32(h ^ k1 ^ static_cast<std::uint32_t>(i >> 32));
    return static_cast<double>(h >> 8) * (1.0 / 16777216.0);
}

// The two per-element loops of QSGD, without carried state, compiled for the baseline ISA, AVX2
// and AVX-512 (the level simd.hpp's isa() picks at run time; same bits either way: integer operations,
// exact conversions and separately rounded double operations).
template <class T>
[[gnu::always_inline]] inline void codes_loop(const T* x, std::size_t i0, std::size_t len, double scale, double cap,
                                              std::uint32_t s, std::uint32_t k0, std::uint32_t k1,
                                              std::uint32_t* codes) {
    for (std::size_t j = 0; j < len; ++j) {
        const std::size_t i = i0 + j;
        double r = std::fabs(static_cast<double>(x[i])) * scale;
        r = r < cap ? r : cap;  // r above s + 1 ends as s anyway; keeps the conversion in range
        std::uint32_t level = static_cast<std::uint32_t>(static_cast<std::int32_t>(r));  // floor: r >= 0
        level += uniform_inline(i, k0, k1) < r - static_cast<double>(level) ? 1u : 0u;
        level = level > s ? s : level;
        codes[j] = (level << 1) | (x[i] < T(0) ? 1u : 0u);
    }
}

template <class T>
[[gnu::always_inline]] inline std::size_t values_loop(const std::uint32_t* codes, std::size_t len, double step,
                                                      std::uint32_t s, T* out) {
    std::size_t wrong = 0;
    for (std::size_t j = 0; j < len; ++j) {
        std::uint32_t level = codes[j] >> 1;
        wrong += level > s ? 1u : 0u;
        level = level > s ? s : level;
        const std::int32_t sign = -static_cast<std::int32_t>(codes[j] & 1u);  // 0 or -1
        const std::int32_t signed_level = (static_cast<std::int32_t>(level) ^ sign) - sign;  // branch-free
        out[j] = static_cast<T>(static_cast<double>(signed_level) * step);
    }
    return wrong;
}

template <class T>
void codes_portable(const T* x, std::size_t i0, std::size_t len, double scale, double cap, std::uint32_t s,
                    std::uint32_t k0, std::uint32_t k1, std::uint32_t* codes) {
    codes_loop(x, i0, len, scale, cap, s, k0, k1, codes);
}

template <class T>
std::size_t values_portable(const std::uint32_t* codes, std::size_t len, double step, std::uint32_t s, T* out) {
    return values_loop(codes, len, step, s, out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FASTFL_COMPRESS_VECTOR_LEVEL(NAME, TARGET)                                                                \
    template <class T>                                                                                            \
    __attribute__((target(TARGET))) void codes_##NAME(const T* x, std::size_t i0, std::size_t len, double scale, \
                                                      double cap, std::uint32_t s, std::uint32_t k0,             \
                                                      std::uint32_t k1, std::uint32_t* codes) {                  \
        codes_loop(x, i0, len, scale, cap, s, k0, k1, codes);                                                     \
    }                                                                                                             \
    template <class T>                                                                                            \
    __attribute__((target(TARGET))) std::size_t values_##NAME(const std::uint32_t* codes, std::size_t len,       \
                                                               double step, std::uint32_t s, T* out) {            \
        return values_loop(codes, len, step, s, out);                                                             \
    }
FASTFL_COMPRESS_VECTOR_LEVEL(avx2, "avx2")
FASTFL_COMPRESS_VECTOR_LEVEL(avx512, "avx512f,avx512bw,avx512vl,avx512dq")
#undef FASTFL_COMPRESS_VECTOR_LEVEL
#define FASTFL_COMPRESS_X86 1
#endif

template <class T>
void codes_block(const T* x, std::size_t i0, std::size_t len, double scale, double cap, std::uint32_t s,
                 std::uint32_t k0, std::uint32_t k1, std::uint32_t* codes) {
#ifdef FASTFL_COMPRESS_X86
    const Isa level = isa();
    if (level == Isa::Avx512) return codes_avx512(x, i0, len, scale, cap, s, k0, k1, codes);
    if (level == Isa::Avx2) return codes_avx2(x, i0, len, scale, cap, s, k0, k1, codes);
#endif
    codes_portable(x, i0, len, scale, cap, s, k0, k1, codes);
}

template <class T>
std::size_t values_block(const std::uint32_t* codes, std::size_t len, double step, std::uint32_t s, T* out) {
#ifdef FASTFL_COMPRESS_X86
    const Isa level = isa();
    if (level == Isa::Avx512) return values_avx512(codes, len, step, s, out);
    if (level == Isa::Avx2) return values_avx2(codes, len, step, s, out);
#endif
    return values_portable(codes, len, step, s, out);
}

}  // namespace

double uniform_at(std::uint64_t i, std::uint32_t k0, std::uint32_t k1) { return uniform_inline(i, k0, k1); }

int qsgd_bits(std::uint32_t s) {
    int bits = 1;
    while ((std::uint64_t{1} << (bits - 1)) <= s) ++bits;  // sign + bit length of s
    return bits;
}

template <class T>
double sum_squares(const T* x, std::size_t n, int threads) {
    // One partial per chunk, added in chunk order: the same bits whichever thread ran which chunk.
    const std::size_t step = chunk_size(n, threads);
    std::vector<double> parts(n == 0 ? 0 : (n + step - 1) / step, 0.0);
    parallel_for(n, threads, [&](std::size_t lo, std::size_t hi) {
        double acc[4] = {0.0, 0.0, 0.0, 0.0};
        std::size_t i = lo;
        for (; i + 4 <= hi; i += 4) {
            for (int m = 0; m < 4; ++m) {
                const double v = static_cast<double>(x[i + m]);
                acc[m] += v * v;
            }
        }
        for (; i < hi; ++i) acc[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
        parts[lo / step] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    });
    double total = 0.0;
    for (const double p : parts) total += p;
    return total;
}

// Codes of one block are computed first (a loop without carried state, which the compiler
// vectorises: truncation instead of a floor call, since r >= 0), then appended to the bit stream.
namespace {
constexpr std::size_t kCodeBlock = 512;

void pack_codes(const std::uint32_t* codes, std::size_t len, int bits, std::uint8_t*& o, std::uint64_t& acc,
                int& filled) {
    if (bits == 8 && filled == 0) {
        for (std::size_t j = 0; j < len; ++j) o[j] = static_cast<std::uint8_t>(codes[j]);
        o += len;
        return;
    }
    for (std::size_t j = 0; j < len; ++j) {
        acc |= static_cast<std::uint64_t>(codes[j]) << filled;
        filled += bits;
        while (filled >= 8) {
            *o++ = static_cast<std::uint8_t>(acc);
            acc >>= 8;
            filled -= 8;
        }
    }
}
}  // namespace

template <class T>
void qsgd_encode(const T* x, std::size_t n, double scale, std::uint32_t s, std::uint32_t k0, std::uint32_t k1,
                 std::uint8_t* out, int threads) {
    const int bits = qsgd_bits(s);
    const double cap = static_cast<double>(s) + 1.0;  // r above s + 1 rounds to s anyway
    parallel_for(n, threads, [&](std::size_t lo, std::size_t hi) {
        std::uint8_t* o = out + lo / 8 * static_cast<std::size_t>(bits);
        std::uint64_t acc = 0;
        int filled = 0;
        alignas(64) std::uint32_t codes[kCodeBlock];
        for (std::size_t b = lo; b < hi; b += kCodeBlock) {
            const std::size_t len = std::min(kCodeBlock, hi - b);
            codes_block(x, b, len, scale, cap, s, k0, k1, codes);
            pack_codes(codes, len, bits, o, acc, filled);
        }
        if (filled > 0) *o = static_cast<std::uint8_t>(acc);
    });
}

template <class T>
std::size_t qsgd_decode(const std::uint8_t* codes, std::size_t n, double step, std::uint32_t s, T* out,
                        int threads) {
    const int bits = qsgd_bits(s);
    const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
    std::mutex lock;
    std::size_t bad = 0;
    parallel_for(n, threads, [&](std::size_t lo, std::size_t hi) {
        const std::uint8_t* p = codes + lo / 8 * static_cast<std::size_t>(bits);
        std::uint64_t acc = 0;
        int filled = 0;
        std::size_t wrong = 0;
        alignas(64) std::uint32_t block[kCodeBlock];
        for (std::size_t b = lo; b < hi; b += kCodeBlock) {
            const std::size_t len = std::min(kCodeBlock, hi - b);
            if (bits == 8 && filled == 0) {
                for (std::size_t j = 0; j < len; ++j) block[j] = p[j];
                p += len;
            } else {
                for (std::size_t j = 0; j < len; ++j) {
                    while (filled < bits) {
                        acc |= static_cast<std::uint64_t>(*p++) << filled;
                        filled += 8;
                    }
                    block[j] = static_cast<std::uint32_t>(acc & mask);
                    acc >>= bits;
                    filled -= bits;
                }
            }
            wrong += values_block(block, len, step, s, out + b);
        }
        if (wrong) {
            std::lock_guard<std::mutex> g(lock);
            bad += wrong;
        }
    });
    return bad;
}

template <class T>
void topk_select(const T* x, std::size_t n, std::size_t k, std::int64_t* idx, T* vals) {
    using U = typename Key<T>::U;
    if (k == 0) return;
    if (k >= n) {
        for (std::size_t i = 0; i < n; ++i) idx[i] = static_cast<std::int64_t>(i), vals[i] = x[i];
        return;
    }
    // Radix select: a histogram of the top 16 magnitude bits finds the bin holding the k-th
    // largest key; an nth_element over that bin alone gives the exact threshold t.
    std::vector<std::size_t> hist(std::size_t{1} << 16, 0);
    for (std::size_t i = 0; i < n; ++i) ++hist[Key<T>::of(x[i]) >> Key<T>::kShift];
    std::size_t bin = hist.size() - 1, above = 0;
    while (above + hist[bin] < k) above += hist[bin--];
    std::vector<U> cand;
    cand.reserve(hist[bin]);
    for (std::size_t i = 0; i < n; ++i) {
        const U key = Key<T>::of(x[i]);
        if ((key >> Key<T>::kShift) == bin) cand.push_back(key);
    }
    const std::size_t r = k - above;  // 1..hist[bin]
    std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(r - 1), cand.end(), std::greater<U>());
    const U t = cand[r - 1];
    std::size_t ties = r - static_cast<std::size_t>(std::count_if(cand.begin(), cand.end(), [t](U c) { return c > t; }));
    std::size_t j = 0;
    for (std::size_t i = 0; i < n && j < k; ++i) {
        const U key = Key<T>::of(x[i]);
        if (key > t || (key == t && ties > 0)) {
            if (key == t) --ties;
            idx[j] = static_cast<std::int64_t>(i);
            vals[j++] = x[i];
        }
    }
}

template <class T>
void gather(const T* x, const std::int64_t* idx, std::size_t k, T* vals) {
    for (std::size_t j = 0; j < k; ++j) vals[j] = x[idx[j]];
}

template <class T>
void scatter(T* out, const std::int64_t* idx, const T* vals, std::size_t k) {
    if (vals == nullptr) {
        for (std::size_t j = 0; j < k; ++j) out[idx[j]] = T(0);
    } else {
        for (std::size_t j = 0; j < k; ++j) out[idx[j]] = vals[j];
    }
}

template <class T>
void dgc_accumulate(T* u, T* v, const T* g, std::size_t n, double momentum, bool nesterov, int threads) {
    const T m = static_cast<T>(momentum);
    parallel_for(n, threads, [&](std::size_t lo, std::size_t hi) {
        if (nesterov) {
            for (std::size_t i = lo; i < hi; ++i) {
                const T ui = (u[i] + g[i]) * m;
                u[i] = ui;
                v[i] = (v[i] + ui) + g[i];
            }
        } else {
            for (std::size_t i = lo; i < hi; ++i) {
                const T ui = u[i] * m + g[i];
                u[i] = ui;
                v[i] = v[i] + ui;
            }
        }
    });
}

#define FASTFL_COMPRESS_INSTANTIATE(T)                                                                         \
    template double sum_squares<T>(const T*, std::size_t, int);                                                \
    template void qsgd_encode<T>(const T*, std::size_t, double, std::uint32_t, std::uint32_t, std::uint32_t,    \
                                 std::uint8_t*, int);                                                          \
    template std::size_t qsgd_decode<T>(const std::uint8_t*, std::size_t, double, std::uint32_t, T*, int);     \
    template void topk_select<T>(const T*, std::size_t, std::size_t, std::int64_t*, T*);                       \
    template void gather<T>(const T*, const std::int64_t*, std::size_t, T*);                                   \
    template void scatter<T>(T*, const std::int64_t*, const T*, std::size_t);                                  \
    template void dgc_accumulate<T>(T*, T*, const T*, std::size_t, double, bool, int);

FASTFL_COMPRESS_INSTANTIATE(float)
FASTFL_COMPRESS_INSTANTIATE(double)
#undef FASTFL_COMPRESS_INSTANTIATE

}  // namespace fastfl::compress

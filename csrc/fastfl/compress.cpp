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

namespace fastfl::compress {

namespace {

std::uint32_t mix32(std::uint32_t h) {
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

}  // namespace

double uniform_at(std::uint64_t i, std::uint32_t k0, std::uint32_t k1) {
    std::uint32_t h = mix32(static_cast<std::uint32_t>(i) * 0x9e3779b9u + k0);
    h = mix32(h ^ k1 ^ static_cast<std::uint32_t>(i >> 32));
    return static_cast<double>(h >> 8) * (1.0 / 16777216.0);
}

int qsgd_bits(std::uint32_t s) {
    int bits = 1;
    while ((std::uint64_t{1} << (bits - 1)) <= s) ++bits;  // sign + bit length of s
    return bits;
}

template <class T>
double sum_squares(const T* x, std::size_t n, int threads) {
    std::mutex lock;
    double total = 0.0;
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
        const double part = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        std::lock_guard<std::mutex> g(lock);
        total += part;
    });
    return total;
}

template <class T>
void qsgd_encode(const T* x, std::size_t n, double scale, std::uint32_t s, std::uint32_t k0, std::uint32_t k1,
                 std::uint8_t* out, int threads) {
    const int bits = qsgd_bits(s);
    const double top = static_cast<double>(s);
    parallel_for(n, threads, [&](std::size_t lo, std::size_t hi) {
        std::uint8_t* o = out + lo / 8 * static_cast<std::size_t>(bits);
        std::uint64_t acc = 0;
        int filled = 0;
        for (std::size_t i = lo; i < hi; ++i) {
            const double r = std::fabs(static_cast<double>(x[i])) * scale;
            double level = std::floor(r);
            if (uniform_at(i, k0, k1) < r - level) level += 1.0;
            if (level > top) level = top;
            const std::uint64_t code = (static_cast<std::uint64_t>(level) << 1) | (x[i] < T(0) ? 1u : 0u);
            acc |= code << filled;
            filled += bits;
            while (filled >= 8) {
                *o++ = static_cast<std::uint8_t>(acc);
                acc >>= 8;
                filled -= 8;
            }
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
        for (std::size_t i = lo; i < hi; ++i) {
            while (filled < bits) {
                acc |= static_cast<std::uint64_t>(*p++) << filled;
                filled += 8;
            }
            const std::uint64_t code = acc & mask;
            acc >>= bits;
            filled -= bits;
            std::uint64_t level = code >> 1;
            if (level > s) {
                ++wrong;
                level = s;
            }
            const double v = static_cast<double>(level) * step;
            out[i] = static_cast<T>((code & 1u) ? -v : v);
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

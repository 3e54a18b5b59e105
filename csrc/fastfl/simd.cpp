// Each vector path is either a loop from loops.hpp compiled again with a target attribute (the
// compiler vectorizes it for that level) or intrinsics where the compiler cannot find the
// instruction (conversions, non-temporal stores, sums kept in registers). The level is chosen at
// run time with __builtin_cpu_supports, so the library needs no -march and never runs an
// instruction the CPU lacks.
#include "fastfl/simd.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "fastfl/loops.hpp"
#include "fastfl/scalar.hpp"

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers build vectors from _mm512_undefined_*(), which -Wall reports.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FASTFL_X86 1
#define FASTFL_AVX2 __attribute__((target("avx2,f16c")))
#define FASTFL_AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,f16c,prefer-vector-width=512")))
#define FASTFL_AVX512_BF16 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,f16c,prefer-vector-width=512")))
#else
#define FASTFL_X86 0
#endif

namespace fastfl {

namespace {

Isa detect() {
#if FASTFL_X86
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (avx512 && __builtin_cpu_supports("f16c")) return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) return Isa::Avx2;
#endif
    return Isa::Scalar;
}

bool detect_bf16() {
#if FASTFL_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

std::atomic<int> g_cap{static_cast<int>(Isa::Avx512)};

// ---- portable loops (the Scalar level, and the tails of the vector loops)

void half_from_float_scalar(const float* src, std::uint16_t* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = half_bits_from_float(src[i]);
}

void float_from_half_scalar(const std::uint16_t* src, float* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_from_half_bits(src[i]);
}

// dst[j] = (partial ? partial[j] : 0) + sum_q w[q] * x[q][j] for j in [from, to).
template <int M>
[[gnu::always_inline]] inline void sum_rows_tail(float* dst, const float* partial, const float* const* x,
                                                 const float* w, std::size_t from, std::size_t to) {
    for (std::size_t j = from; j < to; ++j) {
        float s = partial ? partial[j] : 0.0f;
        for (int q = 0; q < M; ++q) s += w[q] * x[q][j];
        dst[j] = s;
    }
}

template <int M>
void sum_rows_scalar(float* dst, const float* partial, const float* const* x, const float* w, std::size_t len,
                     bool) {
    sum_rows_tail<M>(dst, partial, x, w, 0, len);
}

// Elements before the first `align`-byte boundary of dst (so streaming stores are aligned).
std::size_t head_to(const void* dst, std::size_t align, std::size_t elem, std::size_t len) {
    const std::size_t mis = reinterpret_cast<std::uintptr_t>(dst) & (align - 1);
    return std::min(len, mis == 0 ? 0 : (align - mis) / elem);
}

#if FASTFL_X86

// ---- AVX2 + F16C

FASTFL_AVX2 void half_from_float_avx2(const float* src, std::uint16_t* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
    }
    half_from_float_scalar(src + i, dst + i, n - i);
}

FASTFL_AVX2 void float_from_half_avx2(const std::uint16_t* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    }
    float_from_half_scalar(src + i, dst + i, n - i);
}

FASTFL_AVX2 void copy_stream_avx2(char* dst, const char* src, std::size_t n) {
    const std::size_t head = head_to(dst, 32, 1, n);
    std::memcpy(dst, src, head);  // then dst is 32-byte aligned, as streaming stores need
    std::size_t i = head;
    for (; i + 64 <= n; i += 64) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32));
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i), a);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 32), b);
    }
    std::memcpy(dst + i, src + i, n - i);
    _mm_sfence();  // order the weakly-ordered streaming stores before anything that follows
}

template <int M>
FASTFL_AVX2 void sum_rows_avx2(float* dst, const float* partial, const float* const* x, const float* w,
                            std::size_t len, bool stream) {
    const std::size_t head = stream ? head_to(dst, 32, sizeof(float), len) : 0;
    sum_rows_tail<M>(dst, partial, x, w, 0, head);
    __m256 wv[M];
    for (int q = 0; q < M; ++q) wv[q] = _mm256_set1_ps(w[q]);
    std::size_t j = head;
    for (; j + 8 <= len; j += 8) {
        __m256 s = partial ? _mm256_loadu_ps(partial + j) : _mm256_setzero_ps();
        for (int q = 0; q < M; ++q) s = _mm256_add_ps(s, _mm256_mul_ps(wv[q], _mm256_loadu_ps(x[q] + j)));
        if (stream) {
            _mm256_stream_ps(dst + j, s);
        } else {
            _mm256_storeu_ps(dst + j, s);
        }
    }
    sum_rows_tail<M>(dst, partial, x, w, j, len);
    if (stream) _mm_sfence();
}

// ---- AVX-512 F/BW/VL/DQ (+ BF16)

FASTFL_AVX512 void half_from_float_avx512(const float* src, std::uint16_t* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), h);
    }
    half_from_float_scalar(src + i, dst + i, n - i);
}

FASTFL_AVX512 void float_from_half_avx512(const std::uint16_t* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
    }
    float_from_half_scalar(src + i, dst + i, n - i);
}

// Round-to-nearest-even of 16 floats to bfloat16 with integer operations; NaN -> 0xffff.
FASTFL_AVX512 __m256i bf16_rne_avx512(__m512i u) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0xffff));
    return _mm512_cvtepi32_epi16(r);
}

FASTFL_AVX512 void bf16_from_float_avx512(const float* src, std::uint16_t* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i u = _mm512_loadu_si512(src + i);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), bf16_rne_avx512(u));
    }
    loops::bf16_from_float(src + i, dst + i, n - i);
}

// vcvtneps2bf16 rounds to nearest even like torch, but flushes subnormal inputs to zero and keeps
// NaN payloads; those lanes (exponent field 0 or all ones) take the integer path instead.
FASTFL_AVX512_BF16 void bf16_from_float_avx512bf16(const float* src, std::uint16_t* dst, std::size_t n) {
    const __m512i exp_mask = _mm512_set1_epi32(0x7f800000);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i u = _mm512_loadu_si512(src + i);
        __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_castsi512_ps(u)));
        const __m512i e = _mm512_and_si512(u, exp_mask);
        const __mmask16 special =
            _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()) | _mm512_cmpeq_epi32_mask(e, exp_mask);
        if (special) h = _mm256_mask_blend_epi16(special, h, bf16_rne_avx512(u));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), h);
    }
    loops::bf16_from_float(src + i, dst + i, n - i);
}

FASTFL_AVX512 void float_from_bf16_avx512(const std::uint16_t* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(w, 16));
    }
    loops::float_from_bf16(src + i, dst + i, n - i);
}

FASTFL_AVX512 void copy_stream_avx512(char* dst, const char* src, std::size_t n) {
    const std::size_t head = head_to(dst, 64, 1, n);
    std::memcpy(dst, src, head);
    std::size_t i = head;
    for (; i + 128 <= n; i += 128) {
        const __m512i a = _mm512_loadu_si512(src + i);
        const __m512i b = _mm512_loadu_si512(src + i + 64);
        _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), a);
        _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i + 64), b);
    }
    std::memcpy(dst + i, src + i, n - i);
    _mm_sfence();
}

template <int M>
FASTFL_AVX512 void sum_rows_avx512(float* dst, const float* partial, const float* const* x, const float* w,
                            std::size_t len, bool stream) {
    const std::size_t head = stream ? head_to(dst, 64, sizeof(float), len) : 0;
    sum_rows_tail<M>(dst, partial, x, w, 0, head);
    __m512 wv[M];
    for (int q = 0; q < M; ++q) wv[q] = _mm512_set1_ps(w[q]);
    std::size_t j = head;
    for (; j + 16 <= len; j += 16) {
        __m512 s = partial ? _mm512_loadu_ps(partial + j) : _mm512_setzero_ps();
        for (int q = 0; q < M; ++q) s = _mm512_add_ps(s, _mm512_mul_ps(wv[q], _mm512_loadu_ps(x[q] + j)));
        if (stream) {
            _mm512_stream_ps(dst + j, s);
        } else {
            _mm512_storeu_ps(dst + j, s);
        }
    }
    sum_rows_tail<M>(dst, partial, x, w, j, len);
    if (stream) _mm_sfence();
}

// The generic loops, compiled once per vector level.
#define FASTFL_GENERIC(ATTR, SUFFIX)                                                                          \
    ATTR void double_from_float_##SUFFIX(const float* s, double* d, std::size_t n) { loops::cast_loop(s, d, n); } \
    ATTR void float_from_double_##SUFFIX(const double* s, float* d, std::size_t n) { loops::cast_loop(s, d, n); } \
    template <class A, class X>                                                                                \
    ATTR void add_group_##SUFFIX(A* acc, const X* const* x, const A* w, std::size_t m, std::size_t len) {     \
        loops::add_group(acc, x, w, m, len);                                                                   \
    }                                                                                                          \
    template <class A>                                                                                         \
    ATTR void axpy_##SUFFIX(A* acc, const A* x, A w, std::size_t len) { loops::axpy(acc, x, w, len); }        \
    template <class A>                                                                                         \
    ATTR void mix_##SUFFIX(A* r, const A* old, const A* nu, A keep, A alpha, std::size_t len) {                \
        loops::mix_loop(r, old, nu, keep, alpha, len);                                                         \
    }
FASTFL_GENERIC(FASTFL_AVX2, avx2)
FASTFL_GENERIC(FASTFL_AVX512, avx512)
#undef FASTFL_GENERIC

// Pick the loop for the level in use: f512, f2 or f0 (the portable one).
#define FASTFL_DISPATCH(f512, f2, f0)          \
    switch (isa()) {                           \
        case Isa::Avx512: return f512;         \
        case Isa::Avx2: return f2;             \
        default: return f0;                    \
    }

#else  // not x86-64: every level is the portable loop
#define FASTFL_DISPATCH(f512, f2, f0) return f0;
#endif

template <int M>
void sum_rows_m(float* dst, const float* partial, const float* const* x, const float* w, std::size_t len,
                bool stream) {
    FASTFL_DISPATCH(sum_rows_avx512<M>(dst, partial, x, w, len, stream),
                    sum_rows_avx2<M>(dst, partial, x, w, len, stream), sum_rows_scalar<M>(dst, partial, x, w, len, stream))
}

template <int... Ms>
void sum_rows_by_count(std::size_t m, float* dst, const float* partial, const float* const* x, const float* w,
                       std::size_t len, bool stream, std::integer_sequence<int, Ms...>) {
    using Fn = void (*)(float*, const float*, const float* const*, const float*, std::size_t, bool);
    static constexpr Fn table[] = {&sum_rows_m<Ms + 1>...};
    table[m - 1](dst, partial, x, w, len, stream);
}

}  // namespace

Isa isa_available() {
    static const Isa available = detect();
    return available;
}

bool has_avx512_bf16() {
    static const bool available = detect_bf16();
    return available;
}

Isa isa() { return static_cast<Isa>(std::min(static_cast<int>(isa_available()), g_cap.load(std::memory_order_relaxed))); }

Isa set_isa(Isa cap) { return static_cast<Isa>(g_cap.exchange(static_cast<int>(cap))); }

void copy_stream(void* dst, const void* src, std::size_t bytes) {
    auto* d = static_cast<char*>(dst);
    const auto* s = static_cast<const char*>(src);
    FASTFL_DISPATCH(copy_stream_avx512(d, s, bytes), copy_stream_avx2(d, s, bytes), (void)std::memcpy(dst, src, bytes))
}

void half_from_float(const float* s, std::uint16_t* d, std::size_t n) {
    FASTFL_DISPATCH(half_from_float_avx512(s, d, n), half_from_float_avx2(s, d, n), half_from_float_scalar(s, d, n))
}
void float_from_half(const std::uint16_t* s, float* d, std::size_t n) {
    FASTFL_DISPATCH(float_from_half_avx512(s, d, n), float_from_half_avx2(s, d, n), float_from_half_scalar(s, d, n))
}
void bf16_from_float(const float* s, std::uint16_t* d, std::size_t n) {
#if FASTFL_X86
    if (isa() == Isa::Avx512 && has_avx512_bf16()) return bf16_from_float_avx512bf16(s, d, n);
#endif
    FASTFL_DISPATCH(bf16_from_float_avx512(s, d, n), loops::bf16_from_float(s, d, n), loops::bf16_from_float(s, d, n))
}
void float_from_bf16(const std::uint16_t* s, float* d, std::size_t n) {
    FASTFL_DISPATCH(float_from_bf16_avx512(s, d, n), loops::float_from_bf16(s, d, n), loops::float_from_bf16(s, d, n))
}
void double_from_float(const float* s, double* d, std::size_t n) {
    FASTFL_DISPATCH(double_from_float_avx512(s, d, n), double_from_float_avx2(s, d, n), loops::cast_loop(s, d, n))
}
void float_from_double(const double* s, float* d, std::size_t n) {
    FASTFL_DISPATCH(float_from_double_avx512(s, d, n), float_from_double_avx2(s, d, n), loops::cast_loop(s, d, n))
}
void add_group(float* acc, const float* const* x, const float* w, std::size_t m, std::size_t len) {
    FASTFL_DISPATCH(add_group_avx512(acc, x, w, m, len), add_group_avx2(acc, x, w, m, len),
                    loops::add_group(acc, x, w, m, len))
}
void add_group(double* acc, const double* const* x, const double* w, std::size_t m, std::size_t len) {
    FASTFL_DISPATCH(add_group_avx512(acc, x, w, m, len), add_group_avx2(acc, x, w, m, len),
                    loops::add_group(acc, x, w, m, len))
}
void add_group(double* acc, const float* const* x, const double* w, std::size_t m, std::size_t len) {
    FASTFL_DISPATCH(add_group_avx512(acc, x, w, m, len), add_group_avx2(acc, x, w, m, len),
                    loops::add_group(acc, x, w, m, len))
}

void axpy(float* acc, const float* x, float w, std::size_t len) {
    FASTFL_DISPATCH(axpy_avx512(acc, x, w, len), axpy_avx2(acc, x, w, len), loops::axpy(acc, x, w, len))
}
void axpy(double* acc, const double* x, double w, std::size_t len) {
    FASTFL_DISPATCH(axpy_avx512(acc, x, w, len), axpy_avx2(acc, x, w, len), loops::axpy(acc, x, w, len))
}
void mix_loop(float* r, const float* old, const float* nu, float keep, float alpha, std::size_t len) {
    FASTFL_DISPATCH(mix_avx512(r, old, nu, keep, alpha, len), mix_avx2(r, old, nu, keep, alpha, len),
                    loops::mix_loop(r, old, nu, keep, alpha, len))
}
void mix_loop(double* r, const double* old, const double* nu, double keep, double alpha, std::size_t len) {
    FASTFL_DISPATCH(mix_avx512(r, old, nu, keep, alpha, len), mix_avx2(r, old, nu, keep, alpha, len),
                    loops::mix_loop(r, old, nu, keep, alpha, len))
}

void sum_rows(float* dst, const float* partial, const float* const* x, const float* w, std::size_t m, std::size_t len,
              bool stream) {
    if (m == 0 || m > kMaxRows) throw std::invalid_argument("sum_rows takes 1 to kMaxRows inputs");
    sum_rows_by_count(m, dst, partial, x, w, len, stream, std::make_integer_sequence<int, kMaxRows>{});
}

}  // namespace fastfl

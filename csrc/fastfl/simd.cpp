// Each fast path is the loop from loops.hpp compiled a second time with
// __attribute__((target("avx2,f16c"))), chosen at runtime with __builtin_cpu_supports, so the
// library stays portable (no -march) and never runs an instruction the CPU lacks.
#include "fastfl/simd.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "fastfl/loops.hpp"
#include "fastfl/scalar.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FASTFL_X86 1
#else
#define FASTFL_X86 0
#endif

namespace fastfl {

namespace {

bool detect() {
#if FASTFL_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

std::atomic<bool> g_enabled{true};

void half_from_float_scalar(const float* src, std::uint16_t* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = half_bits_from_float(src[i]);
}

void float_from_half_scalar(const std::uint16_t* src, float* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_from_half_bits(src[i]);
}

#if FASTFL_X86
// The one macro of the core: the target attribute that compiles a function for AVX2 + F16C.
#define FASTFL_AVX2 __attribute__((target("avx2,f16c")))

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
    const std::size_t head = std::min<std::size_t>((32 - (reinterpret_cast<std::uintptr_t>(dst) & 31)) & 31, n);
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
#else
#define FASTFL_AVX2
void half_from_float_avx2(const float* s, std::uint16_t* d, std::size_t n) { half_from_float_scalar(s, d, n); }
void float_from_half_avx2(const std::uint16_t* s, float* d, std::size_t n) { float_from_half_scalar(s, d, n); }
void copy_stream_avx2(char* dst, const char* src, std::size_t n) { std::memcpy(dst, src, n); }
#endif

FASTFL_AVX2 void bf16_from_float_avx2(const float* s, std::uint16_t* d, std::size_t n) {
    loops::bf16_from_float(s, d, n);
}
FASTFL_AVX2 void float_from_bf16_avx2(const std::uint16_t* s, float* d, std::size_t n) {
    loops::float_from_bf16(s, d, n);
}
FASTFL_AVX2 void double_from_float_avx2(const float* s, double* d, std::size_t n) { loops::cast_loop(s, d, n); }
FASTFL_AVX2 void float_from_double_avx2(const double* s, float* d, std::size_t n) { loops::cast_loop(s, d, n); }
template <class A, class X>
FASTFL_AVX2 void add_group_avx2(A* acc, const X* const* x, const A* w, std::size_t m, std::size_t len) {
    loops::add_group(acc, x, w, m, len);
}

}  // namespace

bool simd_available() {
    static const bool available = detect();
    return available;
}

bool simd_enabled() { return simd_available() && g_enabled.load(std::memory_order_relaxed); }

bool use_simd(bool enabled) { return g_enabled.exchange(enabled) && simd_available(); }

void copy_stream(void* dst, const void* src, std::size_t bytes) {
    if (simd_enabled()) return copy_stream_avx2(static_cast<char*>(dst), static_cast<const char*>(src), bytes);
    std::memcpy(dst, src, bytes);
}

void half_from_float(const float* s, std::uint16_t* d, std::size_t n) {
    return simd_enabled() ? half_from_float_avx2(s, d, n) : half_from_float_scalar(s, d, n);
}
void float_from_half(const std::uint16_t* s, float* d, std::size_t n) {
    return simd_enabled() ? float_from_half_avx2(s, d, n) : float_from_half_scalar(s, d, n);
}
void bf16_from_float(const float* s, std::uint16_t* d, std::size_t n) {
    return simd_enabled() ? bf16_from_float_avx2(s, d, n) : loops::bf16_from_float(s, d, n);
}
void float_from_bf16(const std::uint16_t* s, float* d, std::size_t n) {
    return simd_enabled() ? float_from_bf16_avx2(s, d, n) : loops::float_from_bf16(s, d, n);
}
void double_from_float(const float* s, double* d, std::size_t n) {
    return simd_enabled() ? double_from_float_avx2(s, d, n) : loops::cast_loop(s, d, n);
}
void float_from_double(const double* s, float* d, std::size_t n) {
    return simd_enabled() ? float_from_double_avx2(s, d, n) : loops::cast_loop(s, d, n);
}
void add_group(float* acc, const float* const* x, const float* w, std::size_t m, std::size_t len) {
    return simd_enabled() ? add_group_avx2(acc, x, w, m, len) : loops::add_group(acc, x, w, m, len);
}
void add_group(double* acc, const double* const* x, const double* w, std::size_t m, std::size_t len) {
    return simd_enabled() ? add_group_avx2(acc, x, w, m, len) : loops::add_group(acc, x, w, m, len);
}

void add_group(double* acc, const float* const* x, const double* w, std::size_t m, std::size_t len) {
    return simd_enabled() ? add_group_avx2(acc, x, w, m, len) : loops::add_group(acc, x, w, m, len);
}

}  // namespace fastfl

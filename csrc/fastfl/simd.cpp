// F16C conversions compiled for AVX2 through function attributes, so the library itself stays
// portable (no -march) and picks them at runtime with __builtin_cpu_supports.
#include "fastfl/simd.hpp"

#include <atomic>

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

}  // namespace

bool simd_available() {
    static const bool available = detect();
    return available;
}

bool simd_enabled() { return simd_available() && g_enabled.load(std::memory_order_relaxed); }

bool use_simd(bool enabled) { return g_enabled.exchange(enabled) && simd_available(); }

#if FASTFL_X86

__attribute__((target("f16c,avx2"))) void half_from_float_simd(const float* src, std::uint16_t* dst,
                                                               std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(src + i);
        const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
    }
    for (; i < n; ++i) dst[i] = half_bits_from_float(src[i]);
}

__attribute__((target("f16c,avx2"))) void float_from_half_simd(const std::uint16_t* src, float* dst,
                                                               std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) dst[i] = float_from_half_bits(src[i]);
}

#else

void half_from_float_simd(const float* src, std::uint16_t* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = half_bits_from_float(src[i]);
}

void float_from_half_simd(const std::uint16_t* src, float* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_from_half_bits(src[i]);
}

#endif

}  // namespace fastfl

// Runtime-selected fast paths (F16C + AVX2 on x86-64) for the loops that are compute-bound with
// the baseline ISA, and a switch that turns them off so tests can check the portable code too.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastfl {

/// Whether this CPU has F16C and AVX2 (always false on other architectures).
bool simd_available();

/// Whether the fast paths are in use: available and not switched off by `use_simd(false)`.
bool simd_enabled();

/// Switch the fast paths on or off for the whole process (a test hook); returns the previous
/// setting. Thread-safe; calls running concurrently may use either path (same results).
bool use_simd(bool enabled);

// The loops below pick the AVX2 build when simd_enabled(), else the portable one. For all of
// them, n or len elements, src and dst must not overlap, and results are identical either way.

/// memcpy with non-temporal (cache-bypassing) stores: for copies larger than the caches, it
/// saves the read-for-ownership of every destination line (measured 2x faster than memcpy on
/// 47 MB here). The regions must not overlap. Falls back to memcpy without AVX2.
void copy_stream(void* dst, const void* src, std::size_t bytes);

/// float32 -> float16 bits, round-to-nearest-even (F16C, else scalar code).
void half_from_float(const float* src, std::uint16_t* dst, std::size_t n);
/// float16 bits -> float32, exact.
void float_from_half(const std::uint16_t* src, float* dst, std::size_t n);
/// float32 -> bfloat16 bits, round-to-nearest-even, NaN -> 0xffff.
void bf16_from_float(const float* src, std::uint16_t* dst, std::size_t n);
/// bfloat16 bits -> float32, exact.
void float_from_bf16(const std::uint16_t* src, float* dst, std::size_t n);
/// float32 <-> float64.
void double_from_float(const float* src, double* dst, std::size_t n);
void float_from_double(const double* src, float* dst, std::size_t n);
/// acc[j] += w[0]*x[0][j] + ... + w[m-1]*x[m-1][j] (m in 1..4), left to right in acc's type;
/// acc must not overlap any x.
void add_group(float* acc, const float* const* x, const float* w, std::size_t m, std::size_t len);
void add_group(double* acc, const double* const* x, const double* w, std::size_t m, std::size_t len);
void add_group(double* acc, const float* const* x, const double* w, std::size_t m, std::size_t len);

}  // namespace fastfl

// Runtime-selected fast paths for float32 <-> float16 (F16C + AVX2 on x86-64), with a switch
// that turns them off so tests can check the portable code against torch too.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastfl {

/// Whether this CPU has F16C and AVX2 (always false on other architectures).
bool simd_available();

/// Whether the fast paths are in use: available and not switched off by `use_simd(false)`.
bool simd_enabled();

/// Switch the fast paths on or off for the whole process (a test hook); returns the previous
/// setting. Thread-safe, but calls running concurrently may use either path.
bool use_simd(bool enabled);

/// float32 -> float16 bits for n elements, round-to-nearest-even. Requires simd_enabled().
/// src and dst must not overlap.
void half_from_float_simd(const float* src, std::uint16_t* dst, std::size_t n);

/// float16 bits -> float32 for n elements (exact). Requires simd_enabled(); no overlap.
void float_from_half_simd(const std::uint16_t* src, float* dst, std::size_t n);

}  // namespace fastfl

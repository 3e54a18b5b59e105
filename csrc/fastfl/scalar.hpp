// Scalar conversions between the ten element types, bitwise equal to torch's `copy_` on CPU:
// round-to-nearest-even into float16/bfloat16 (from float64 and int64 through float32, as torch
// does), NaN and Inf kept, float -> integer by truncation, anything -> bool as `!= 0`.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "fastfl/dtype.hpp"

namespace fastfl {

inline std::uint32_t float_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline float bits_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

/// float32 -> float16 bits, round-to-nearest-even; NaN keeps its sign and top payload bits and
/// becomes quiet, exactly as the F16C instruction vcvtps2ph does.
inline std::uint16_t half_bits_from_float(float f) {
    const std::uint32_t u = float_bits(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    std::uint32_t x = u & 0x7fffffffu;
    if (x > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    if (x >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
    if (x < 0x38800000u) {
        // Below 2^-14 the result is subnormal: adding 0.5 puts the float ulp at 2^-24, the
        // subnormal step, so the FPU's own round-to-nearest-even does the rounding.
        const float scaled = bits_float(x) + 0.5f;
        return static_cast<std::uint16_t>(sign | (float_bits(scaled) - 0x3f000000u));
    }
    const std::uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;  // rebias the exponent by (15 - 127) << 23, then round half to even
    return static_cast<std::uint16_t>(sign | (x >> 13));
}

/// float16 bits -> float32 (exact); a NaN keeps its payload and becomes quiet, as vcvtph2ps does.
inline float float_from_half_bits(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t em = h & 0x7fffu;
    if (em >= 0x7c00u) {
        const std::uint32_t mant = (em & 0x3ffu) << 13;
        return bits_float(sign | 0x7f800000u | mant | (mant ? 0x400000u : 0u));
    }
    if (em < 0x400u) {
        const float mag = static_cast<float>(em) * 5.9604644775390625e-8f;  // em * 2^-24, exact
        return bits_float(sign | float_bits(mag));
    }
    return bits_float(sign | ((em << 13) + 0x38000000u));  // rebias the exponent by (127 - 15) << 23
}

/// float32 -> bfloat16 bits, round-to-nearest-even; every NaN becomes 0xffff, as torch's
/// vectorized CPU conversion gives.
inline std::uint16_t bf16_bits_from_float(float f) {
    const std::uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0xffffu;
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float float_from_bf16_bits(std::uint16_t b) { return bits_float(static_cast<std::uint32_t>(b) << 16); }

inline float to_float(Half h) { return float_from_half_bits(h.bits); }
inline float to_float(BFloat16 b) { return float_from_bf16_bits(b.bits); }

/// Convert one element of type S to type D, as torch's CPU `copy_` does.
template <class D, class S>
inline D cast(S v) {
    if constexpr (std::is_same_v<D, S>) {
        return v;
    } else if constexpr (is_half_v<S>) {
        return cast<D>(to_float(v));
    } else if constexpr (std::is_same_v<D, bool>) {
        return v != S(0);
    } else if constexpr (std::is_same_v<D, Half>) {
        return Half{half_bits_from_float(static_cast<float>(v))};
    } else if constexpr (std::is_same_v<D, BFloat16>) {
        return BFloat16{bf16_bits_from_float(static_cast<float>(v))};
    } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D> && sizeof(D) < 4) {
        // Narrow integers wrap like torch's (truncate to a wide integer, keep the low bits).
        return static_cast<D>(static_cast<std::int64_t>(v));
    } else {
        return static_cast<D>(v);
    }
}

}  // namespace fastfl

// Conversion loops: memmove for equal dtypes, F16C for float32 <-> float16, plain loops the
// compiler vectorizes for everything else, and float32 as the stepping stone for 16-bit floats.
#include "fastfl/convert.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "fastfl/scalar.hpp"
#include "fastfl/simd.hpp"

namespace fastfl {

namespace {

// float32 -> bfloat16 on raw bits, written so that GCC vectorizes it (no struct wrappers).
void bf16_from_float_loop(const float* src, std::uint16_t* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_bits_from_float(src[i]);
}

void float_from_bf16_loop(const std::uint16_t* src, float* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_from_bf16_bits(src[i]);
}

template <class D, class S>
void convert_typed(const S* src, D* dst, std::size_t n) {
    using U16 = std::uint16_t;
    if constexpr (std::is_same_v<S, float> && std::is_same_v<D, Half>) {
        if (simd_enabled()) return half_from_float_simd(src, reinterpret_cast<U16*>(dst), n);
    } else if constexpr (std::is_same_v<S, Half> && std::is_same_v<D, float>) {
        if (simd_enabled()) return float_from_half_simd(reinterpret_cast<const U16*>(src), dst, n);
    } else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, BFloat16>) {
        return bf16_from_float_loop(src, reinterpret_cast<U16*>(dst), n);
    } else if constexpr (std::is_same_v<S, BFloat16> && std::is_same_v<D, float>) {
        return float_from_bf16_loop(reinterpret_cast<const U16*>(src), dst, n);
    }
    for (std::size_t i = 0; i < n; ++i) dst[i] = cast<D>(src[i]);
}

bool is_half(DType d) { return d == DType::Float16 || d == DType::BFloat16; }

// A 16-bit float to or from anything but float32 goes through float32 in L1-sized chunks:
// that is torch's own rounding path, and it reuses the fast float32 <-> 16-bit loops.
void convert_via_float(const void* src, DType s, void* dst, DType d, std::size_t n) {
    alignas(64) float tmp[kBlock];
    const std::size_t ss = size_of(s), ds = size_of(d);
    for (std::size_t off = 0; off < n; off += kBlock) {
        const std::size_t len = std::min(kBlock, n - off);
        convert_range(static_cast<const char*>(src) + off * ss, s, tmp, DType::Float32, len);
        convert_range(tmp, DType::Float32, static_cast<char*>(dst) + off * ds, d, len);
    }
}

}  // namespace

void convert_range(const void* src, DType s, void* dst, DType d, std::size_t n) {
    if (n == 0) return;
    if (s == d) {
        std::memmove(dst, src, n * size_of(s));
        return;
    }
    if ((is_half(s) || is_half(d)) && s != DType::Float32 && d != DType::Float32) {
        convert_via_float(src, s, dst, d, n);
        return;
    }
    visit(s, [&](auto stag) {
        using S = typename decltype(stag)::type;
        visit(d, [&](auto dtag) {
            using D = typename decltype(dtag)::type;
            convert_typed<D, S>(static_cast<const S*>(src), static_cast<D*>(dst), n);
        });
    });
}

}  // namespace fastfl

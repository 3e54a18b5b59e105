// Conversion loops: memmove for equal dtypes, simd.cpp's loops for float32 <-> float16/bfloat16/
// float64, plain vectorizable loops for the rest, float32 as the stepping stone for 16-bit floats.
#include "fastfl/cast.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "fastfl/scalar.hpp"
#include "fastfl/simd.hpp"

namespace fastfl {

namespace {

template <class D, class S>
void cast_typed(const S* src, D* dst, std::size_t n) {
    using U16 = std::uint16_t;
    // The pairs that are compute-bound in the baseline ISA go to simd.cpp's runtime-chosen loops.
    if constexpr (std::is_same_v<S, float> && std::is_same_v<D, Half>) {
        half_from_float(src, reinterpret_cast<U16*>(dst), n);
    } else if constexpr (std::is_same_v<S, Half> && std::is_same_v<D, float>) {
        float_from_half(reinterpret_cast<const U16*>(src), dst, n);
    } else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, BFloat16>) {
        bf16_from_float(src, reinterpret_cast<U16*>(dst), n);
    } else if constexpr (std::is_same_v<S, BFloat16> && std::is_same_v<D, float>) {
        float_from_bf16(reinterpret_cast<const U16*>(src), dst, n);
    } else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, double>) {
        double_from_float(src, dst, n);
    } else if constexpr (std::is_same_v<S, double> && std::is_same_v<D, float>) {
        float_from_double(src, dst, n);
    } else {
        for (std::size_t i = 0; i < n; ++i) dst[i] = cast<D>(src[i]);
    }
}

bool is_half(DType d) { return d == DType::Float16 || d == DType::BFloat16; }

// A 16-bit float to or from anything but float32 goes through float32 in L1-sized chunks:
// that is torch's own rounding path, and it reuses the fast float32 <-> 16-bit loops.
void cast_via_float(const void* src, DType s, void* dst, DType d, std::size_t n) {
    alignas(64) float tmp[kBlock];
    const std::size_t ss = size_of(s), ds = size_of(d);
    for (std::size_t off = 0; off < n; off += kBlock) {
        const std::size_t len = std::min(kBlock, n - off);
        cast_range(static_cast<const char*>(src) + off * ss, s, tmp, DType::Float32, len);
        cast_range(tmp, DType::Float32, static_cast<char*>(dst) + off * ds, d, len);
    }
}

}  // namespace

void cast_range(const void* src, DType s, void* dst, DType d, std::size_t n, bool stream) {
    if (n == 0) return;
    if (s == d) {
        const std::size_t bytes = n * size_of(s);
        const auto* from = static_cast<const char*>(src);
        auto* to = static_cast<char*>(dst);
        const bool apart = to + bytes <= from || from + bytes <= to;
        if (stream && apart) return copy_stream(dst, src, bytes);
        std::memmove(dst, src, bytes);
        return;
    }
    if ((is_half(s) || is_half(d)) && s != DType::Float32 && d != DType::Float32) {
        cast_via_float(src, s, dst, d, n);
        return;
    }
    visit(s, [&](auto stag) {
        using S = typename decltype(stag)::type;
        visit(d, [&](auto dtag) {
            using D = typename decltype(dtag)::type;
            cast_typed<D, S>(static_cast<const S*>(src), static_cast<D*>(dst), n);
        });
    });
}

}  // namespace fastfl

// Inner loops written once and compiled twice by simd.cpp: for the baseline ISA and for AVX2.
// Only plain IEEE operations (no fused multiply-add), so both builds give identical bits.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastfl/scalar.hpp"

namespace fastfl::loops {

/// acc[j] += w[0]*x[0][j] + ... + w[M-1]*x[M-1][j], added left to right in type A (x widened
/// from X exactly): the same roundings as M separate passes over acc, with the sum kept in a
/// register across the M inputs.
template <int M, class A, class X>
[[gnu::always_inline]] inline void add_terms(A* __restrict acc, const X* const* x, const A* w, std::size_t len) {
    const X* xs[M];
    A ws[M];
    for (int m = 0; m < M; ++m) xs[m] = x[m], ws[m] = w[m];
    for (std::size_t j = 0; j < len; ++j) {
        A sum = acc[j];
        for (int m = 0; m < M; ++m) sum += ws[m] * static_cast<A>(xs[m][j]);
        acc[j] = sum;
    }
}

/// add_terms for m = 1..4 inputs.
template <class A, class X>
[[gnu::always_inline]] inline void add_group(A* acc, const X* const* x, const A* w, std::size_t m,
                                             std::size_t len) {
    switch (m) {
        case 1: return add_terms<1>(acc, x, w, len);
        case 2: return add_terms<2>(acc, x, w, len);
        case 3: return add_terms<3>(acc, x, w, len);
        default: return add_terms<4>(acc, x, w, len);
    }
}

/// acc[j] += w * x[j] (accumulate; unflatten's add/sub with w = +-1).
template <class A>
[[gnu::always_inline]] inline void axpy(A* __restrict acc, const A* __restrict x, A w, std::size_t len) {
    for (std::size_t j = 0; j < len; ++j) acc[j] += w * x[j];
}

/// r[j] = old[j] * keep + alpha * nu[j] (FedAsync's mix); r may be old itself.
template <class A>
[[gnu::always_inline]] inline void mix_loop(A* r, const A* old, const A* __restrict nu, A keep, A alpha,
                                            std::size_t len) {
    for (std::size_t j = 0; j < len; ++j) r[j] = old[j] * keep + alpha * nu[j];
}

template <class D, class S>
[[gnu::always_inline]] inline void cast_loop(const S* src, D* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]);
}

[[gnu::always_inline]] inline void bf16_from_float(const float* src, std::uint16_t* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_bits_from_float(src[i]);
}

[[gnu::always_inline]] inline void float_from_bf16(const std::uint16_t* src, float* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = float_from_bf16_bits(src[i]);
}

}  // namespace fastfl::loops

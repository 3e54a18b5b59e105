// Single-threaded conversion of one contiguous run between any two of the ten dtypes, and the
// block helpers the other kernels use to read and write any float dtype as float or double.
#pragma once

#include <cstddef>

#include "fastfl/dtype.hpp"

namespace fastfl {

/// Elements per block in the blocked kernels: a block of doubles is 16 KiB, so a few of them
/// stay in L1/L2 while K inputs stream through.
constexpr std::size_t kBlock = 2048;

/// Convert n elements of dtype s at src into dtype d at dst, bitwise as torch's CPU copy_.
/// Single-threaded. src and dst may be the same memory only when s == d; otherwise they must
/// not overlap. With `stream`, equal-dtype copies bypass the cache (for copies larger than it).
/// Thread-safe (no shared state besides the read-only SIMD switch).
void cast_range(const void* src, DType s, void* dst, DType d, std::size_t n, bool stream = false);

/// Element `i` of a view, as a byte pointer.
inline const void* at(const View& v, std::size_t i) {
    return static_cast<const char*>(v.data) + i * size_of(v.dtype);
}

inline void* at(const MutView& v, std::size_t i) { return static_cast<char*>(v.data) + i * size_of(v.dtype); }

/// Elements [off, off+len) of v as type A: a pointer into v itself when v holds A, else `tmp`
/// (len <= kBlock elements) after converting into it.
template <class A>
const A* load_as(const View& v, std::size_t off, std::size_t len, A* tmp) {
    if (v.dtype == dtype_of<A>()) return static_cast<const A*>(v.data) + off;
    cast_range(at(v, off), v.dtype, tmp, dtype_of<A>(), len);
    return tmp;
}

/// Write len elements of type A into elements [off, off+len) of v, converting to v's dtype.
/// `a` may point into v itself (then nothing is copied).
template <class A>
void store_from(const A* a, const MutView& v, std::size_t off, std::size_t len) {
    void* dst = at(v, off);
    if (dst != static_cast<const void*>(a)) cast_range(a, dtype_of<A>(), dst, v.dtype, len);
}

}  // namespace fastfl

// Many buffers to many buffers in one call: the kernels behind flatten, unflatten and pack.
#pragma once

#include <vector>

#include "fastfl/dtype.hpp"

namespace fastfl {

/// For each i, cast srcs[i] into dsts[i] (bitwise as torch's copy_), all pairs in one
/// parallel pass split by element count over up to `threads` threads.
/// Requires srcs.size() == dsts.size() and equal counts per pair (throws std::invalid_argument
/// otherwise). A dst must not overlap any src or other dst, except that a pair with equal
/// dtypes may be the very same memory. Thread-safe for disjoint outputs.
void cast_many(const std::vector<View>& srcs, const std::vector<MutView>& dsts, int threads);

/// For each i, dsts[i] += alpha * srcs[i], computed in float32 (float64 if either side is
/// float64) and rounded to the dst dtype. The dsts must be floating; srcs may be any dtype.
/// Same preconditions on sizes and overlap as cast_many.
void combine_many(const std::vector<View>& srcs, const std::vector<MutView>& dsts, double alpha, int threads);

}  // namespace fastfl

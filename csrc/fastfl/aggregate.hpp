// Aggregation kernels: weighted sum of K inputs (FedAvg), accumulate (acc += w*x), and mix
// (FedAsync). All blocked so each output block is read and written once while it sits in L1.
#pragma once

#include <vector>

#include "fastfl/dtype.hpp"

namespace fastfl {

/// out = sum_k weights[k] * inputs[k], in one pass over memory: each input is read once and
/// out is written once (never read). Inputs are float16/bfloat16/float32/float64 with
/// out.count elements each; out is float32 or float64; the running sum is float64 if acc_fp64,
/// else float32, and starts from +0. out may be the very same memory as an input of its dtype;
/// otherwise no overlap. Throws std::invalid_argument on a size or dtype mismatch.
void weighted_sum(const std::vector<View>& inputs, const std::vector<double>& weights, const MutView& out,
                  bool acc_fp64, int threads);

/// acc += weight * x, in acc's precision (float32 or float64); x is any floating dtype with
/// acc.count elements. x may be the very same memory as acc; otherwise no overlap.
void accumulate(const MutView& acc, const View& x, double weight, int threads);

/// s = (1 - alpha) * s + alpha * n in place, computed in float64 if s is float64, else float32,
/// and rounded to s's dtype. s and n are floating with equal counts; n may be s itself.
void mix(const MutView& s, const View& n, double alpha, int threads);

}  // namespace fastfl

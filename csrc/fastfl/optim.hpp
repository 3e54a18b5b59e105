// Optimizer kernels of the FL algorithms over contiguous float32 buffers, one pass over memory
// each: the client's corrected SGD step, the control-variate update, the server optimizers.
#pragma once

#include <cstddef>

namespace fastfl {

/// Server optimizer kinds of server_step (same codes as fastfl.ops.optim.SERVER_OPTIMIZERS).
enum class ServerOpt : int { Momentum = 0, Adam = 1, Yogi = 2, Adagrad = 3 };

/// w[i] -= lr * (g[i] + mu * (w[i] - anchor[i]) + lin[i]); anchor and lin may be null (terms
/// dropped). All buffers hold n floats; g, anchor and lin may not overlap w.
void local_step(float* w, const float* g, const float* anchor, const float* lin, std::size_t n, float lr, float mu,
                int threads);

/// new = state - shift + scale * (x - y); delta (if not null) = new - state; state = new.
/// shift may be null (no shift).
void control_update(float* state, const float* x, const float* y, const float* shift, float* delta, std::size_t n,
                    float scale, int threads);

/// One server optimizer step on the pseudo-gradient d (see fastfl/ops/optim.py for the formulas);
/// v may be null for Momentum. Throws std::invalid_argument on an unknown kind or a missing v.
void server_step(float* x, const float* d, float* m, float* v, std::size_t n, int kind, float lr, float beta1,
                 float beta2, float tau, int threads);

}  // namespace fastfl

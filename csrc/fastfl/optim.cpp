// Plain loops the compiler vectorises; each element is read and written once, large buffers are
// split over threads by parallel_for.
#include "fastfl/optim.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "fastfl/parallel.hpp"

namespace fastfl {

void local_step(float* w, const float* g, const float* anchor, const float* lin, std::size_t n, float lr, float mu,
                int threads) {
    parallel_for(n, threads, [=](std::size_t lo, std::size_t hi) {
        if (anchor != nullptr && lin != nullptr) {
            for (std::size_t i = lo; i < hi; ++i) w[i] -= lr * (g[i] + mu * (w[i] - anchor[i]) + lin[i]);
        } else if (anchor != nullptr) {
            for (std::size_t i = lo; i < hi; ++i) w[i] -= lr * (g[i] + mu * (w[i] - anchor[i]));
        } else if (lin != nullptr) {
            for (std::size_t i = lo; i < hi; ++i) w[i] -= lr * (g[i] + lin[i]);
        } else {
            for (std::size_t i = lo; i < hi; ++i) w[i] -= lr * g[i];
        }
    });
}

void control_update(float* state, const float* x, const float* y, const float* shift, float* delta, std::size_t n,
                    float scale, int threads) {
    parallel_for(n, threads, [=](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
            float change = scale * (x[i] - y[i]);
            if (shift != nullptr) change -= shift[i];
            const float updated = state[i] + change;
            if (delta != nullptr) delta[i] = updated - state[i];
            state[i] = updated;
        }
    });
}

void server_step(float* x, const float* d, float* m, float* v, std::size_t n, int kind, float lr, float beta1,
                 float beta2, float tau, int threads) {
    if (kind < 0 || kind > 3) throw std::invalid_argument("unknown server optimizer kind " + std::to_string(kind));
    const auto opt = static_cast<ServerOpt>(kind);
    if (opt != ServerOpt::Momentum && v == nullptr && n > 0) throw std::invalid_argument("this optimizer needs v");
    parallel_for(n, threads, [=](std::size_t lo, std::size_t hi) {
        if (opt == ServerOpt::Momentum) {
            for (std::size_t i = lo; i < hi; ++i) {
                m[i] = beta1 * m[i] + d[i];
                x[i] += lr * m[i];
            }
            return;
        }
        for (std::size_t i = lo; i < hi; ++i) {
            const float d2 = d[i] * d[i];
            m[i] = beta1 * m[i] + (1.0f - beta1) * d[i];
            if (opt == ServerOpt::Adam) {
                v[i] = beta2 * v[i] + (1.0f - beta2) * d2;
            } else if (opt == ServerOpt::Yogi) {
                const float diff = v[i] - d2;
                const float sign = static_cast<float>((diff > 0.0f) - (diff < 0.0f));
                v[i] -= (1.0f - beta2) * d2 * sign;
            } else {
                v[i] += d2;
            }
            x[i] += lr * m[i] / (std::sqrt(v[i]) + tau);
        }
    });
}

}  // namespace fastfl

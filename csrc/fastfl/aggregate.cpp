// Blocked aggregation loops. Each block of kBlock elements is loaded (converted to the working
// precision when needed), combined in a small stack buffer, and stored once.
#include "fastfl/aggregate.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "fastfl/cast.hpp"
#include "fastfl/parallel.hpp"
#include "fastfl/simd.hpp"

namespace fastfl {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

void require_float(DType d, const char* name) {
    require(is_floating(d), std::string(name) + " must have a floating dtype");
}

// Run block(off, len) over [0, n) in kBlock pieces, split over threads.
template <class F>
void blocked(std::size_t n, int threads, const F& block) {
    parallel_for(n, threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t o = begin; o < end; o += kBlock) block(o, std::min(kBlock, end - o));
    });
}

// Inputs combined per pass over a block: four streams at once keep more memory requests in
// flight than one, and the running sum stays in a register across them (measured: 1.5x faster
// than one input per pass at K=10, reaching the read bandwidth; 2 and 8 are no better than 4).
// The grouped loop itself is simd.cpp's add_group.
constexpr std::size_t kGroup = 4;

// Add inputs [k, k+m) of one block into acc. Inputs are read as A, except that float32 and
// 16-bit inputs of a float64 sum are read as float32 and widened inside the loop (saves a pass).
template <class A>
void add_inputs(A* acc, const std::vector<View>& inputs, const std::vector<double>& weights, std::size_t k,
                std::size_t m, std::size_t off, std::size_t len) {
    A w[kGroup];
    for (std::size_t g = 0; g < m; ++g) w[g] = static_cast<A>(weights[k + g]);
    bool narrow = std::is_same_v<A, double>;
    for (std::size_t g = 0; g < m; ++g) narrow = narrow && inputs[k + g].dtype != DType::Float64;
    if (narrow) {
        alignas(64) float tmp[kGroup][kBlock];
        const float* x[kGroup];
        for (std::size_t g = 0; g < m; ++g) x[g] = load_as<float>(inputs[k + g], off, len, tmp[g]);
        add_group(acc, x, w, m, len);
    } else {
        alignas(64) A tmp[kGroup][kBlock];
        const A* x[kGroup];
        for (std::size_t g = 0; g < m; ++g) x[g] = load_as<A>(inputs[k + g], off, len, tmp[g]);
        add_group(acc, x, w, m, len);
    }
}

template <class A>
void weighted_sum_as(const std::vector<View>& inputs, const std::vector<double>& weights, const MutView& out,
                     int threads) {
    blocked(out.count, threads, [&](std::size_t off, std::size_t len) {
        alignas(64) A acc[kBlock];
        std::fill(acc, acc + len, A(0));
        for (std::size_t k = 0; k < inputs.size(); k += kGroup) {
            add_inputs(acc, inputs, weights, k, std::min(kGroup, inputs.size() - k), off, len);
        }
        store_from<A>(acc, out, off, len);
    });
}

template <class A>
void accumulate_as(const MutView& acc, const View& x, A w, int threads) {
    blocked(acc.count, threads, [&](std::size_t off, std::size_t len) {
        alignas(64) A tmp[kBlock];
        A* a = static_cast<A*>(acc.data) + off;
        axpy(a, load_as<A>(x, off, len, tmp), w, len);
    });
}

template <class W>
void mix_as(const MutView& s, const View& n, W keep, W alpha, int threads) {
    const View s_in{s.data, s.count, s.dtype};
    blocked(s.count, threads, [&](std::size_t off, std::size_t len) {
        alignas(64) W a[kBlock];
        alignas(64) W b[kBlock];
        W* r = s.dtype == dtype_of<W>() ? static_cast<W*>(s.data) + off : a;
        const W* old = load_as<W>(s_in, off, len, a);  // == r
        const W* nu = load_as<W>(n, off, len, b);
        mix_loop(r, old, nu, keep, alpha, len);
        store_from<W>(r, s, off, len);
    });
}

// Outputs at least this large skip the cache on the way out (non-temporal stores): the result is
// not read again by this kernel, and the stores save a read-for-ownership of every line.
constexpr std::size_t kStreamOutFrom = std::size_t{16} << 20;

// Elements per block of the all-float32 path: a float32 block of the partial sum is 32 KiB (L1)
// when more than kMaxRows inputs need more than one pass.
constexpr std::size_t kWideBlock = 8192;

bool all_float32(const std::vector<View>& inputs) {
    for (const auto& v : inputs) {
        if (v.dtype != DType::Float32) return false;
    }
    return true;
}

// The all-float32 sum: up to kMaxRows inputs per pass with the sum in a vector register, so K <= 16
// inputs are read once and the result is written once (straight into a float32 out, streamed
// past the caches when large). Same additions in the same order as weighted_sum_as<float>.
void weighted_sum_f32(const std::vector<View>& inputs, const std::vector<double>& weights, const MutView& out,
                      int threads) {
    const bool direct = out.dtype == DType::Float32;
    const bool stream = direct && out.count * sizeof(float) >= kStreamOutFrom;
    std::vector<float> w(weights.size());
    for (std::size_t k = 0; k < w.size(); ++k) w[k] = static_cast<float>(weights[k]);
    parallel_for(out.count, threads, [&](std::size_t begin, std::size_t end) {
        alignas(64) float acc[kWideBlock];
        const float* x[kMaxRows];
        for (std::size_t o = begin; o < end; o += kWideBlock) {
            const std::size_t len = std::min(kWideBlock, end - o);
            for (std::size_t k = 0; k < inputs.size(); k += kMaxRows) {
                const std::size_t m = std::min(kMaxRows, inputs.size() - k);
                const bool last = k + m == inputs.size();
                for (std::size_t g = 0; g < m; ++g) x[g] = static_cast<const float*>(inputs[k + g].data) + o;
                float* dst = last && direct ? static_cast<float*>(out.data) + o : acc;
                sum_rows(dst, k == 0 ? nullptr : acc, x, w.data() + k, m, len, stream && dst != acc);
            }
            if (!direct) store_from<float>(acc, out, o, len);
        }
    });
}

}  // namespace

void weighted_sum(const std::vector<View>& inputs, const std::vector<double>& weights, const MutView& out,
                  bool acc_fp64, int threads) {
    require(!inputs.empty(), "weighted_sum needs at least one input");
    require(inputs.size() == weights.size(), "weighted_sum needs one weight per input");
    require(out.dtype == DType::Float32 || out.dtype == DType::Float64, "out must be float32 or float64");
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        require_float(inputs[k].dtype, "every input");
        require(inputs[k].count == out.count, "input " + std::to_string(k) + " and out differ in size");
    }
    if (acc_fp64) {
        weighted_sum_as<double>(inputs, weights, out, threads);
    } else if (all_float32(inputs)) {
        weighted_sum_f32(inputs, weights, out, threads);
    } else {
        weighted_sum_as<float>(inputs, weights, out, threads);
    }
}

void accumulate(const MutView& acc, const View& x, double weight, int threads) {
    require(acc.count == x.count, "acc and x differ in size");
    require_float(x.dtype, "x");
    if (acc.dtype == DType::Float64) {
        accumulate_as<double>(acc, x, weight, threads);
    } else {
        require(acc.dtype == DType::Float32, "acc must be float32 or float64");
        accumulate_as<float>(acc, x, static_cast<float>(weight), threads);
    }
}

void mix(const MutView& s, const View& n, double alpha, int threads) {
    require(s.count == n.count, "s and n differ in size");
    require_float(s.dtype, "s");
    require_float(n.dtype, "n");
    if (s.dtype == DType::Float64) {
        mix_as<double>(s, n, 1.0 - alpha, alpha, threads);
    } else {
        mix_as<float>(s, n, static_cast<float>(1.0 - alpha), static_cast<float>(alpha), threads);
    }
}

}  // namespace fastfl

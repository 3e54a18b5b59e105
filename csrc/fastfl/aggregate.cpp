// Blocked aggregation loops. Each block of kBlock elements is loaded (converted to the working
// precision when needed), combined in a small stack buffer, and stored once.
#include "fastfl/aggregate.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "fastfl/convert.hpp"
#include "fastfl/parallel.hpp"

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

template <class A>
void weighted_sum_as(const std::vector<View>& inputs, const std::vector<double>& weights, const MutView& out,
                     int threads) {
    blocked(out.count, threads, [&](std::size_t off, std::size_t len) {
        alignas(64) A acc[kBlock];
        alignas(64) A tmp[kBlock];
        std::fill(acc, acc + len, A(0));
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            const A* x = load_as<A>(inputs[k], off, len, tmp);
            const A w = static_cast<A>(weights[k]);
            for (std::size_t j = 0; j < len; ++j) acc[j] += w * x[j];
        }
        store_from<A>(acc, out, off, len);
    });
}

template <class A>
void accumulate_as(const MutView& acc, const View& x, A w, int threads) {
    blocked(acc.count, threads, [&](std::size_t off, std::size_t len) {
        alignas(64) A tmp[kBlock];
        A* a = static_cast<A*>(acc.data) + off;
        const A* v = load_as<A>(x, off, len, tmp);
        for (std::size_t j = 0; j < len; ++j) a[j] += w * v[j];
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
        for (std::size_t j = 0; j < len; ++j) r[j] = old[j] * keep + alpha * nu[j];
        store_from<W>(r, s, off, len);
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

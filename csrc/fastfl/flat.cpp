// cast_many / combine_many: the pairs are laid end to end as one index space, which
// parallel_for cuts into equal chunks, so one huge tensor and many small ones both balance.
#include "fastfl/flat.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

#include "fastfl/cast.hpp"
#include "fastfl/parallel.hpp"
#include "fastfl/simd.hpp"

namespace fastfl {

namespace {

// Writing more than this, a copy will not stay in cache anyway (L3 is 32 MB here, shared), so
// equal-dtype pieces use streaming stores: no read-for-ownership of the destination.
constexpr std::size_t kStreamFrom = std::size_t{16} << 20;

using PairFn = std::function<void(std::size_t pair, std::size_t off, std::size_t len)>;

// Check the pairs and return the prefix sums of their element counts.
std::vector<std::size_t> offsets_of(const std::vector<View>& srcs, const std::vector<MutView>& dsts) {
    if (srcs.size() != dsts.size()) {
        throw std::invalid_argument("got " + std::to_string(srcs.size()) + " sources for " +
                                    std::to_string(dsts.size()) + " destinations");
    }
    std::vector<std::size_t> starts(srcs.size() + 1, 0);
    for (std::size_t i = 0; i < srcs.size(); ++i) {
        if (srcs[i].count != dsts[i].count) {
            throw std::invalid_argument("pair " + std::to_string(i) + " has " + std::to_string(srcs[i].count) +
                                        " source and " + std::to_string(dsts[i].count) + " destination elements");
        }
        starts[i + 1] = starts[i] + srcs[i].count;
    }
    return starts;
}

// Call fn on every piece of every pair that falls in the global range [begin, end).
void walk(const std::vector<std::size_t>& starts, std::size_t begin, std::size_t end, const PairFn& fn) {
    auto i = static_cast<std::size_t>(std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin()) - 1;
    for (; i + 1 < starts.size() && starts[i] < end; ++i) {
        const std::size_t lo = std::max(begin, starts[i]), hi = std::min(end, starts[i + 1]);
        if (hi > lo) fn(i, lo - starts[i], hi - lo);
    }
}

void for_pairs(const std::vector<View>& srcs, const std::vector<MutView>& dsts, int threads, const PairFn& fn) {
    const std::vector<std::size_t> starts = offsets_of(srcs, dsts);
    parallel_for(starts.back(), threads, [&](std::size_t b, std::size_t e) { walk(starts, b, e, fn); });
}

template <class W>
void combine_piece(const View& src, const MutView& dst, std::size_t off, std::size_t len, W alpha) {
    alignas(64) W a[kBlock];
    alignas(64) W b[kBlock];
    const View dst_in{dst.data, dst.count, dst.dtype};
    for (std::size_t o = off; o < off + len; o += kBlock) {
        const std::size_t n = std::min(kBlock, off + len - o);
        W* r = dst.dtype == dtype_of<W>() ? static_cast<W*>(dst.data) + o : a;  // where the sum goes
        const W* d = load_as<W>(dst_in, o, n, a);  // == r
        const W* s = load_as<W>(src, o, n, b);
        mix_loop(r, d, s, W(1), alpha, n);  // d * 1 is exact: r = d + alpha * s
        store_from<W>(r, dst, o, n);
    }
}

}  // namespace

void cast_many(const std::vector<View>& srcs, const std::vector<MutView>& dsts, int threads) {
    std::size_t bytes = 0;
    for (const auto& d : dsts) bytes += d.count * size_of(d.dtype);
    const bool stream = bytes >= kStreamFrom;
    for_pairs(srcs, dsts, threads, [&](std::size_t i, std::size_t off, std::size_t len) {
        cast_range(at(srcs[i], off), srcs[i].dtype, at(dsts[i], off), dsts[i].dtype, len, stream);
    });
}

void combine_many(const std::vector<View>& srcs, const std::vector<MutView>& dsts, double alpha, int threads) {
    for (std::size_t i = 0; i < dsts.size(); ++i) {
        if (!is_floating(dsts[i].dtype)) throw std::invalid_argument("combine needs floating destinations");
    }
    for_pairs(srcs, dsts, threads, [&](std::size_t i, std::size_t off, std::size_t len) {
        if (srcs[i].dtype == DType::Float64 || dsts[i].dtype == DType::Float64) {
            combine_piece<double>(srcs[i], dsts[i], off, len, alpha);
        } else {
            combine_piece<float>(srcs[i], dsts[i], off, len, static_cast<float>(alpha));
        }
    });
}

}  // namespace fastfl

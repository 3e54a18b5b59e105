// parallel_for: one short-lived std::thread per extra chunk; no pool, no global state, so calls
// from several Python threads at once are independent.
#include "fastfl/parallel.hpp"

#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

namespace fastfl {

void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t, std::size_t)>& fn,
                  std::size_t min_per_thread) {
    const std::size_t by_size = n / std::max<std::size_t>(min_per_thread, 1);
    const std::size_t workers = std::clamp<std::size_t>(by_size, 1, static_cast<std::size_t>(std::max(threads, 1)));
    if (workers == 1) {
        if (n > 0) fn(0, n);
        return;
    }
    constexpr std::size_t kAlign = 64;
    const std::size_t step = ((n + workers - 1) / workers + kAlign - 1) / kAlign * kAlign;
    std::vector<std::thread> pool;
    pool.reserve(workers - 1);
    for (std::size_t begin = step; begin < n; begin += step) {
        const std::size_t end = std::min(n, begin + step);
        try {
            pool.emplace_back([&fn, begin, end] { fn(begin, end); });
        } catch (const std::system_error&) {
            fn(begin, end);
        }
    }
    fn(0, std::min(n, step));
    for (auto& t : pool) t.join();
}

}  // namespace fastfl

// Splitting one large loop over a few std::threads; small loops stay on the calling thread.
#pragma once

#include <cstddef>
#include <functional>

namespace fastfl {

/// Below this many elements per thread, starting a thread costs more than it saves
/// (measured: starting and joining one std::thread is ~20-40 us here, the time to stream
/// ~1 MB; see csrc/README.md).
constexpr std::size_t kMinPerThread = std::size_t{1} << 18;

/// Run fn(begin, end) on consecutive chunks covering [0, n): on min(threads, n / min_per_thread)
/// threads (at least one: the caller's), with chunk bounds on multiples of 64 elements.
/// fn must not throw and must be safe to run concurrently on disjoint ranges. Returns after
/// every chunk is done. If a thread cannot be started, its chunk runs on the caller.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t, std::size_t)>& fn,
                  std::size_t min_per_thread = kMinPerThread);

}  // namespace fastfl

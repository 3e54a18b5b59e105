// Splitting one large loop over a few std::threads; small loops stay on the calling thread.
#pragma once

#include <cstddef>
#include <functional>

namespace fastfl {

/// Below this many elements per thread, starting a thread costs more than it saves
/// (measured: starting and joining one std::thread is ~20-40 us here, the time to stream
/// ~1 MB; see csrc/README.md).
constexpr std::size_t kMinPerThread = std::size_t{1} << 18;

/// Chunks per thread: enough that a thread whose core is taken for a while leaves its share to
/// the others, few enough that a chunk (>= kMinPerThread / 8 elements) dwarfs taking it.
constexpr std::size_t kChunksPerThread = 8;

/// The chunk length parallel_for uses for n elements: a multiple of 64 elements, fixed by
/// (n, threads, min_per_thread) alone, so a reduction that combines per-chunk results in chunk
/// order is deterministic whichever thread ran which chunk.
std::size_t chunk_size(std::size_t n, int threads, std::size_t min_per_thread = kMinPerThread);

/// Run fn(begin, end) on the consecutive chunks [c * step, (c + 1) * step) covering [0, n), step =
/// chunk_size(n, threads, min_per_thread), on min(threads, n / min_per_thread) threads (at least
/// one: the caller's), each taking the next chunk until none is left. fn must not throw and must
/// be safe to run concurrently on disjoint ranges. Returns after every chunk is done (a worker
/// that starts after that finds nothing to do and never calls fn). If a thread
/// cannot be started, the others take its chunks.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t, std::size_t)>& fn,
                  std::size_t min_per_thread = kMinPerThread);

}  // namespace fastfl

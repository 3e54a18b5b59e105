// parallel_for: short-lived detached std::threads that take fixed chunks from a shared counter;
// no pool, no global state, so calls from several Python threads at once are independent.
//
// Why chunks rather than one equal share per thread: on 2 vCPUs a core is often busy for a few
// milliseconds when a kernel starts (torch's OpenMP workers spin after every parallel torch op,
// and the machine is shared). With equal shares the kernel waits for the slowest share, up to 2x;
// with chunks the thread that has its core keeps taking work (measured: FedAvg of 10 x 47 MB
// right after `tensor.sum()` went from 15 ms to within 10 % of its undisturbed time).
#include "fastfl/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace fastfl {

namespace {

constexpr std::size_t kAlign = 64;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// The CPUs new workers should start on: the ones this process may use, the caller's own CPU
// last. Why: Linux tends to start a new thread on its creator's CPU when the other CPUs are
// idle (a halted vCPU looks expensive to wake) and moves it only milliseconds later, so after a
// pause the second thread of a memory-bound kernel added almost nothing (FedAvg 10 x 47 MB: 14.7
// ms after a 20 ms sleep vs 10.4 ms back to back; 15.4 ms on one thread). Empty: leave placement
// to the OS.
std::vector<int> worker_cpus() {
    std::vector<int> cpus;
#if defined(__linux__)
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return cpus;
    const int here = sched_getcpu();
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (c != here && CPU_ISSET(c, &allowed)) cpus.push_back(c);
    }
#endif
    return cpus;
}

// Put the calling thread on `cpu` (best effort: the thread keeps running wherever it is on failure).
void move_to(int cpu) {
#if defined(__linux__)
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
#else
    (void)cpu;
#endif
}

}  // namespace

std::size_t chunk_size(std::size_t n, int threads, std::size_t min_per_thread) {
    const std::size_t by_size = n / std::max<std::size_t>(min_per_thread, 1);
    const std::size_t workers = std::clamp<std::size_t>(by_size, 1, static_cast<std::size_t>(std::max(threads, 1)));
    if (workers == 1) return std::max<std::size_t>(n, 1);
    return round_up((n + workers * kChunksPerThread - 1) / (workers * kChunksPerThread), kAlign);
}

void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t, std::size_t)>& fn,
                  std::size_t min_per_thread) {
    if (n == 0) return;
    const std::size_t step = chunk_size(n, threads, min_per_thread);
    const std::size_t chunks = (n + step - 1) / step;
    if (chunks == 1) {
        fn(0, n);
        return;
    }
    const std::size_t workers = std::min<std::size_t>(chunks, static_cast<std::size_t>(std::max(threads, 1)));
    // The caller waits for the chunks to be done, not for the threads to exit: a worker that
    // starts late (its core busy) finds no chunk left and ends without touching fn, so it never
    // holds the call up. What it does touch lives in `state`, which it co-owns.
    struct State {
        std::atomic<std::size_t> next{0};
        std::atomic<std::size_t> done{0};
        std::mutex lock;
        std::condition_variable finished;
    };
    const auto state = std::make_shared<State>();
    const auto* body = &fn;
    const auto work = [state, body, step, n, chunks] {
        for (std::size_t c = state->next.fetch_add(1); c < chunks; c = state->next.fetch_add(1)) {
            (*body)(c * step, std::min(n, (c + 1) * step));
            if (state->done.fetch_add(1) + 1 == chunks) {
                const std::lock_guard<std::mutex> g(state->lock);
                state->finished.notify_all();
            }
        }
    };
    const std::vector<int> cpus = worker_cpus();
    for (std::size_t t = 1; t < workers; ++t) {
        const int cpu = cpus.empty() ? -1 : cpus[(t - 1) % cpus.size()];
        try {
            std::thread([work, cpu] {
                if (cpu >= 0) move_to(cpu);
                work();
            }).detach();
        } catch (const std::system_error&) {
            break;  // the threads started (and the caller) take the remaining chunks
        }
    }
    work();
    std::unique_lock<std::mutex> g(state->lock);
    state->finished.wait(g, [&] { return state->done.load() == chunks; });
}

}  // namespace fastfl

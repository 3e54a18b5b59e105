// alloc_pages / free_pages: mmap with the unaligned head and tail trimmed, madvise before any
// touch, and an exact-size free list. The pool only sees buffers whose last tensor is gone
// (free_pages runs from the tensor's deleter), so reuse can never alias live data.
#include "fastfl/memory.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#define FASTFL_MMAP 1
#else
#include <cstdlib>
#define FASTFL_MMAP 0
#endif

namespace fastfl {

namespace {

// Default pool limit: enough for a few ResNet-18-sized results (47 MB each) per process.
constexpr std::size_t kDefaultPoolLimit = std::size_t{256} << 20;
// At most this many buffers wait in the pool (a linear search stays trivial).
constexpr std::size_t kMaxPooled = 16;

std::size_t rounded(std::size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

struct Pool {
    std::mutex lock;
    std::vector<std::pair<std::size_t, void*>> free;  // (rounded size, address), oldest first
    std::size_t held = 0;
    std::size_t limit = kDefaultPoolLimit;
};

Pool& pool() {
    static Pool* p = new Pool;  // never destroyed: tensors may be freed during interpreter exit
    return *p;
}

void* map_fresh(std::size_t size) {
#if FASTFL_MMAP
    const std::size_t span = size + kHugePage;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > start) munmap(raw, aligned - start);
    const std::uintptr_t end = start + span, used_end = aligned + size;
    if (end > used_end) munmap(reinterpret_cast<void*>(used_end), end - used_end);
#ifdef MADV_HUGEPAGE
    madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // advice only: errors are harmless
#endif
    return reinterpret_cast<void*>(aligned);
#else
    void* p = std::aligned_alloc(kHugePage, size);
    if (p == nullptr) throw std::bad_alloc();
    return p;
#endif
}

void unmap(void* data, std::size_t size) noexcept {
#if FASTFL_MMAP
    munmap(data, size);
#else
    (void)size;
    std::free(data);
#endif
}

}  // namespace

void* alloc_pages(std::size_t bytes) {
    const std::size_t size = rounded(std::max<std::size_t>(bytes, 1));
    Pool& p = pool();
    {
        std::lock_guard<std::mutex> g(p.lock);
        for (auto it = p.free.rbegin(); it != p.free.rend(); ++it) {
            if (it->first == size) {
                void* data = it->second;
                p.free.erase(std::next(it).base());
                p.held -= size;
                return data;
            }
        }
    }
    return map_fresh(size);
}

void free_pages(void* data, std::size_t bytes) noexcept {
    if (data == nullptr) return;
    const std::size_t size = rounded(std::max<std::size_t>(bytes, 1));
    Pool& p = pool();
    {
        std::lock_guard<std::mutex> g(p.lock);
        if (p.held + size <= p.limit && p.free.size() < kMaxPooled) {
            p.free.emplace_back(size, data);
            p.held += size;
            return;
        }
    }
    unmap(data, size);
}

std::size_t set_pool_limit(std::size_t bytes) {
    Pool& p = pool();
    std::vector<std::pair<std::size_t, void*>> drop;
    std::size_t old;
    {
        std::lock_guard<std::mutex> g(p.lock);
        old = std::exchange(p.limit, bytes);
        while (p.held > p.limit && !p.free.empty()) {  // oldest first
            drop.push_back(p.free.front());
            p.held -= p.free.front().first;
            p.free.erase(p.free.begin());
        }
    }
    for (const auto& [size, data] : drop) unmap(data, size);
    return old;
}

std::size_t pooled_bytes() {
    Pool& p = pool();
    std::lock_guard<std::mutex> g(p.lock);
    return p.held;
}

}  // namespace fastfl

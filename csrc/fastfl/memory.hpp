// Large host buffers: 2 MiB-aligned anonymous memory advised for transparent huge pages before
// its first touch, and a small pool that hands a freed buffer back out while it is still warm.
#pragma once

#include <cstddef>

namespace fastfl {

/// Bytes per huge page on x86-64 Linux; pooled sizes are rounded up to a multiple of it.
constexpr std::size_t kHugePage = std::size_t{2} << 20;

/// Return `bytes` (> 0) of writable memory aligned to kHugePage, uninitialised. A buffer that
/// `free_pages` pooled with the same rounded size is reused (its pages are already mapped);
/// otherwise fresh pages are mapped and advised MADV_HUGEPAGE (when the OS has transparent huge
/// pages in `madvise` or `always` mode, each first touch then maps 2 MiB instead of 4 KiB).
/// Throws std::bad_alloc when the OS refuses. Thread-safe.
void* alloc_pages(std::size_t bytes);

/// Give back memory from alloc_pages(bytes): kept in the pool while the pool holds less than
/// its limit, else unmapped. Thread-safe; does not need the Python GIL.
void free_pages(void* data, std::size_t bytes) noexcept;

/// Set the most bytes the pool keeps (0 empties it and turns pooling off); returns the old limit.
std::size_t set_pool_limit(std::size_t bytes);

/// Bytes currently held by the pool (freed buffers waiting for reuse).
std::size_t pooled_bytes();

}  // namespace fastfl

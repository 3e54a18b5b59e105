"""Byte buffers for packages: allocation with huge pages, and reuse of memory nothing uses any more.

The reuse rule, in one place (`HostBlock`): a block of CPU memory is handed out only as torch
tensors passed through `HostBlock.hand_out`, which keeps a Python weak reference to each such
tensor's storage (`weakref.ref(t.untyped_storage())`). torch keeps a storage's Python object alive
exactly as long as the storage itself (PyObject preservation), so the reference dies when the last
user of the storage goes. Everything that can reach the bytes through a tensor holds its storage:
the tensor itself, its slices, reshapes and dtype views, its `untyped_storage()`, its `.numpy()`
arrays (which hold the tensor) and memoryviews of those. So when every weak reference is dead,
nothing but the block can reach the memory, and the next package may overwrite it. Copies
(`clone`, casts) own their memory and do not hold the block. Memory reached otherwise (a raw
`data_ptr()`) is the caller's risk, as with any torch buffer. At import, `WATCHABLE` checks that
this torch behaves so; where it does not, nothing is ever reused.

Blocks are used three ways: received small packages land in a ring of 8 KiB frames
(`FrameRing`), received large bodies in the last two body buffers (`BodyBuffers`), and a
collected `Package` gives its buffer to a bounded pool (`BufferPool`) for the next package of a
similar size. Reusing memory saves the page faults of a fresh allocation, which cost as much as
the copy or the transfer itself for large packages. Only CPU memory is reused.

A block of `ops.LARGE_BYTES` (4 MiB) or more takes its memory from `fastfl.ops.empty`: 2 MiB-aligned
pages advised for transparent huge pages, or warm pages that the native pool kept from a freed
buffer. Such memory goes back to that pool only when the block and everything made from it are
gone (the block's numpy array holds the tensor that owns it), so the rule above is unchanged; a
block that the pools here drop still comes back warm the next time one of its size is needed.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch
from torch import Tensor

from fastfl import ops

HUGE_ALLOC = 1 << 21
MIN_REUSE = 1 << 16


def _storage_refs_track_storages() -> bool:
    """True when a weak reference to a tensor's storage object lives exactly as long as the storage."""
    t = torch.zeros(4, dtype=torch.uint8)
    ref = weakref.ref(t.untyped_storage())
    view = t[1:].view(torch.int8)
    del t
    alive = ref() is not None
    del view
    return alive and ref() is None


WATCHABLE = _storage_refs_track_storages()


def empty_bytes(nbytes: int, device: torch.device | None = None) -> Tensor:
    """Allocate an uninitialised uint8 buffer; large CPU ones as `host_memory` does."""
    if (device is None or device.type == "cpu") and nbytes >= HUGE_ALLOC:
        return torch.from_numpy(host_memory(nbytes))
    return torch.empty(nbytes, dtype=torch.uint8, device=device)


def host_memory(nbytes: int, *, zeroed: bool = False) -> np.ndarray:
    """Uninitialised (or zeroed) CPU bytes as a numpy array, cheap to write for the first time.

    From `ops.LARGE_BYTES` up: `fastfl.ops.empty` memory (huge-page-advised, or warm from the
    native pool), held by the array until the array and every view of it are gone. Below: numpy
    (the C allocator's free lists serve small sizes warm; calloc gives zeros for free).
    """
    if nbytes < ops.LARGE_BYTES:
        return np.zeros(nbytes, np.uint8) if zeroed else np.empty(nbytes, np.uint8)
    owner = ops.empty(nbytes, dtype=torch.uint8)
    if zeroed:
        owner.zero_()
    return owner.numpy()


class HostBlock:
    """CPU bytes handed out as tensors, free for reuse once no tensor made from them is alive.

    Args:
        nbytes: the block's size.
        zeroed: start with zero bytes.

    Attributes:
        mem: the block's memory (a numpy uint8 array; never hand it out directly).
        whole: a uint8 tensor over all of `mem`, for this module's owners to receive or copy
            into; it is not watched, so never let it (or a view of it) escape.
    """

    __slots__ = ("_refs", "mem", "whole")

    def __init__(self, nbytes: int, *, zeroed: bool = False) -> None:
        self.mem = host_memory(nbytes, zeroed=zeroed)
        self.whole = torch.from_numpy(self.mem)
        self._refs: list[weakref.ref] = []

    @property
    def nbytes(self) -> int:
        """The block's size in bytes."""
        return self.mem.nbytes

    def hand_out(self, t: Tensor) -> Tensor:
        """Watch a tensor made from `mem` (not from `whole`) that is about to leave; return it."""
        self._refs.append(weakref.ref(t.untyped_storage()))
        return t

    def tensor(self, nbytes: int | None = None) -> Tensor:
        """A new watched uint8 tensor over the first `nbytes` bytes (all of them by default)."""
        mem = self.mem if nbytes is None else self.mem[:nbytes]
        return self.hand_out(torch.from_numpy(mem))

    def free(self) -> bool:
        """True when no tensor handed out (nor anything made from one) is alive."""
        refs = self._refs
        if refs:
            for ref in refs:
                if ref() is not None:
                    return False
            refs.clear()
        return WATCHABLE


class FrameRing:
    """Receive frames for small packages, reused once nothing received from them is alive.

    Args:
        nbytes: the frame size.
        slots: how many frames to keep (0 allocates every time).
    """

    def __init__(self, nbytes: int, slots: int = 2) -> None:
        self.nbytes = nbytes
        self.slots = slots
        self._frames: list[HostBlock] = []

    def take(self) -> HostBlock:
        """Return a free frame, allocating one if none is."""
        for block in self._frames:
            if block.free():
                return block
        block = HostBlock(self.nbytes)
        self._frames = [block, *self._frames][: self.slots]
        return block


class BodyBuffers:
    """Receive buffers for large bodies: one of the last `slots` that is free and big enough, or a new one.

    Two slots let a caller keep the tensors of one package while the next one arrives.

    Args:
        reuse: False allocates every time.
        slots: how many recent buffers to keep for reuse.
    """

    def __init__(self, reuse: bool = True, slots: int = 2) -> None:
        self.reuse = reuse
        self.slots = slots
        self._spares: list[HostBlock] = []

    def take(self, nbytes: int) -> HostBlock:
        """Return a free block of at least `nbytes` bytes."""
        for spare in self._spares:
            if nbytes <= spare.nbytes and spare.free():
                return spare
        block = HostBlock(nbytes)
        if self.reuse and nbytes >= MIN_REUSE:
            self._spares = [block, *self._spares][: self.slots]
        return block


class BufferPool:
    """Blocks of packages that were garbage-collected, for new packages of a similar size.

    A block is handed out again only when it is free and at most twice the size asked for. The
    pool holds at most `max_buffers` blocks and `max_bytes` bytes, dropping the oldest first;
    `clear()` empties it.
    """

    def __init__(self, max_buffers: int = 4, max_bytes: int = 1 << 29) -> None:
        self.max_buffers = max_buffers
        self.max_bytes = max_bytes
        self._blocks: list[HostBlock] = []
        self._lock = threading.Lock()

    def give(self, block: HostBlock) -> None:
        """Offer a block that its package no longer needs."""
        if not MIN_REUSE <= block.nbytes <= self.max_bytes:
            return
        with self._lock:
            self._blocks.append(block)
            while len(self._blocks) > self.max_buffers or self.nbytes > self.max_bytes:
                self._blocks.pop(0)

    def take(self, nbytes: int) -> HostBlock | None:
        """Return a free block of nbytes..2*nbytes bytes, or None."""
        with self._lock:
            for i in range(len(self._blocks) - 1, -1, -1):
                block = self._blocks[i]
                if nbytes <= block.nbytes <= 2 * nbytes and block.free():
                    return self._blocks.pop(i)
        return None

    @property
    def nbytes(self) -> int:
        """Bytes held by the pool."""
        return sum(b.nbytes for b in self._blocks)

    def clear(self) -> None:
        """Drop every pooled block."""
        with self._lock:
            self._blocks.clear()


PACKAGE_BUFFERS = BufferPool()

"""Byte buffers for packages: allocation with huge pages, and reuse of buffers nobody references.

Received tensors are views into their body buffer, and a package's tensors are views into its
buffer, so a buffer can only be reused once every such view is gone. Reusing it then avoids the
page faults of a fresh allocation, which cost as much as the copy or the transfer itself for
large packages. Whether anything still references a buffer is read from its storage's use count;
where torch does not expose it, nothing is reused.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import torch
from torch import Tensor

HUGE_ALLOC = 1 << 21
MIN_REUSE = 1 << 16

_use_count = getattr(torch._C, "_storage_Use_Count", None)


def _count(t: Tensor) -> int:
    return int(_use_count(t.untyped_storage()._cdata))


_BASELINE = _count(torch.empty(1)) if _use_count is not None else None


def unreferenced(t: Tensor) -> bool:
    """True when `t` is the only tensor using its storage (so its bytes may be overwritten)."""
    return _BASELINE is not None and _count(t) == _BASELINE


def empty_bytes(nbytes: int, device: torch.device | None = None) -> Tensor:
    """Allocate an uninitialised uint8 buffer; large CPU ones through numpy, which gets huge pages."""
    if (device is None or device.type == "cpu") and nbytes >= HUGE_ALLOC:
        return torch.from_numpy(np.empty(nbytes, dtype=np.uint8))
    return torch.empty(nbytes, dtype=torch.uint8, device=device)


class BodyBuffers:
    """Hand out receive buffers, reusing one of the last `slots` large ones that is free and big enough.

    Two slots let a caller keep the tensors of one package while the next one arrives.

    Args:
        reuse: False allocates every time.
        slots: how many recent buffers to keep for reuse.
    """

    def __init__(self, reuse: bool = True, slots: int = 2) -> None:
        self.reuse = reuse and _BASELINE is not None
        self.slots = slots
        self._spares: list[Tensor] = []

    def take(self, nbytes: int, device: torch.device) -> Tensor:
        """Return a buffer of exactly `nbytes` bytes (a view of a spare one when possible)."""
        for spare in self._spares:
            if spare.device == device and nbytes <= spare.numel() and unreferenced(spare):
                return spare[:nbytes]
        buf = empty_bytes(nbytes, device)
        if self.reuse and nbytes >= MIN_REUSE:
            self._spares = [buf, *self._spares][: self.slots]
        return buf[:nbytes]  # a view, so that holding it counts as a use of the storage


class FrameRing:
    """Receive frames for small packages on the CPU, reused once nothing references them.

    Inline tensors are numpy views of the frame's array, so the array's reference count tells
    whether any of them (or anything derived from them) is still alive.

    Args:
        nbytes: the frame size.
        slots: how many frames to keep.
    """

    def __init__(self, nbytes: int, slots: int = 2) -> None:
        self.nbytes = nbytes
        self.slots = slots
        self._frames: list[tuple[np.ndarray, Tensor]] = []
        self._baseline = self._free_count()

    def _free_count(self) -> int:
        probe = self._new()
        self._frames.append(probe)
        count = sys.getrefcount(probe[0])
        self._frames.clear()
        return count

    def _new(self) -> tuple[np.ndarray, Tensor]:
        host = np.empty(self.nbytes, np.uint8)
        return host, torch.from_numpy(host)

    def take(self) -> tuple[np.ndarray, Tensor]:
        """Return a free frame (its numpy array and the tensor over it), allocating one if none is."""
        for pair in self._frames:
            if sys.getrefcount(pair[0]) == self._baseline:
                return pair
        pair = self._new()
        self._frames = [pair, *self._frames][: self.slots]
        return pair


class BufferPool:
    """Buffers of packages that were garbage-collected, for new packages of a similar size.

    A buffer is handed out again only when nothing references it any more and it is at most
    twice the size asked for. The pool holds at most `max_buffers` buffers and `max_bytes` bytes,
    dropping the oldest first; `clear()` empties it.
    """

    def __init__(self, max_buffers: int = 4, max_bytes: int = 1 << 29) -> None:
        self.max_buffers = max_buffers
        self.max_bytes = max_bytes
        self._buffers: list[Tensor] = []
        self._lock = threading.Lock()

    def give(self, buf: Tensor) -> None:
        """Offer a CPU buffer that its package no longer needs."""
        if _BASELINE is None or buf.device.type != "cpu" or not MIN_REUSE <= buf.numel() <= self.max_bytes:
            return
        with self._lock:
            self._buffers.append(buf)
            while len(self._buffers) > self.max_buffers or self.nbytes > self.max_bytes:
                self._buffers.pop(0)

    def take(self, nbytes: int) -> Tensor | None:
        """Return a free CPU buffer of nbytes..2*nbytes bytes, or None."""
        with self._lock:
            for i in range(len(self._buffers) - 1, -1, -1):
                buf = self._buffers[i]
                if nbytes <= buf.numel() <= 2 * nbytes and unreferenced(buf):
                    return self._buffers.pop(i)
        return None

    @property
    def nbytes(self) -> int:
        """Bytes held by the pool."""
        return sum(b.numel() for b in self._buffers)

    def clear(self) -> None:
        """Drop every pooled buffer."""
        with self._lock:
            self._buffers.clear()


PACKAGE_BUFFERS = BufferPool()

"""The bytes of one Package, kept ready for the wire: [header room][payload][padding][table][metadata].

The first 64 bytes are room for the header, so a package whose body fits in the 8 KiB frame is
sent in place, frame and all. The buffer grows as tensors are appended (keeping what is packed),
lives in pooled memory on the CPU (buffers.py), and the table and metadata are written after the
payload once per change, so sending one package to many ranks rewrites only the header.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from fastfl.core.communicator import wire
from fastfl.core.communicator._helpers import HEAD_ROOM, as_bytes, zero_frame
from fastfl.core.communicator.buffers import PACKAGE_BUFFERS, HostBlock, empty_bytes
from fastfl.errors import PackageError

_SLACK = wire.table_bytes(8, 32, True)  # room for a few more tensors' table rows after a growth


class PackBuffer:
    """A package's byte buffer (None until the first tensor or send) and what its tail holds."""

    __slots__ = ("_meta_at", "_table", "_tail_end", "block", "buf")

    def __init__(self) -> None:
        self.buf: Tensor | None = None
        self.block: HostBlock | None = None  # the memory under `buf`, when it may be pooled
        self._table: bytes | None = None
        self._meta_at: tuple[int, bytes] | None = None  # where the metadata section was written, and what
        self._tail_end = 0  # where the last body written ended

    def release(self) -> None:
        """Offer the memory to the package pool (reused once nothing views it any more)."""
        pool = PACKAGE_BUFFERS  # None only while the interpreter shuts down
        if self.block is not None and pool is not None:
            pool.give(self.block)

    def stale(self) -> None:
        """Forget the written table and metadata (the payload changed)."""
        self._table = self._meta_at = None

    def reserve(self, need: int, payload_end: int, device: torch.device) -> bool:
        """Make the buffer at least `need` bytes long, keeping payload bytes [0, payload_end).

        Returns:
            True when the buffer was replaced (anything written into the old one is gone).

        Raises:
            PackageError: the package already holds bytes on another device.
        """
        if self.buf is not None and self.buf.device != device:
            raise PackageError(f"tensors are on {device} but the package holds tensors on {self.buf.device}")
        have = 0 if self.buf is None else self.buf.numel()
        if need <= have:
            return False
        if self.buf is None and need <= wire.FRAME_BYTES:
            self.buf = zero_frame(device)
            return True
        size = max(need, have + have // 2) + _SLACK
        block = None
        if device.type == "cpu":
            block = PACKAGE_BUFFERS.take(size) or HostBlock(size)
            buf = block.tensor()
        else:
            buf = empty_bytes(size, device)
        if self.buf is not None and payload_end:
            buf[HEAD_ROOM : HEAD_ROOM + payload_end].copy_(self.buf[HEAD_ROOM : HEAD_ROOM + payload_end])
        self.release()
        self.buf, self.block = buf, block
        self.stale()
        self._tail_end = HEAD_ROOM + payload_end
        return True

    def zero_gaps(self, start: int, offsets: list[int], sizes: list[int]) -> None:
        """Zero the alignment gaps before each new tensor (they may hold an earlier table)."""
        prev = start
        for off, size in zip(offsets, sizes, strict=True):
            if off > prev:
                self.buf[HEAD_ROOM + prev : HEAD_ROOM + off].zero_()
            prev = off + size

    def write_tail(
        self, payload_end: int, table_bytes: int, table: Callable[[], bytes], section: bytes
    ) -> int:
        """Write the table (made by `table()` when needed) and the metadata section; return the body's end.

        Bytes left over from a longer earlier body are zeroed, so an inline frame stays canonical.
        """
        start = HEAD_ROOM + wire.align(payload_end, 8)
        meta_at = start + table_bytes
        stop = meta_at + len(section)
        if self.buf is None or self.buf.numel() < stop:
            self.reserve(stop, payload_end, self.buf.device if self.buf is not None else torch.device("cpu"))
        if self._table is None:
            self._table = table()
            self.buf[HEAD_ROOM + payload_end : start].zero_()
            if self._table:
                self.buf[start : start + len(self._table)].copy_(as_bytes(self._table))
        if self._meta_at != (meta_at, section):
            if section:
                self.buf[meta_at:stop].copy_(as_bytes(section))
            self._meta_at = (meta_at, section)
        if self._tail_end > stop:
            self.buf[stop : self._tail_end].zero_()
        self._tail_end = stop
        return stop

    @property
    def table_written(self) -> bool:
        """True when the table matches the payload (nothing appended since it was written)."""
        return self._table is not None

"""A one-slot pool of receive buffers: reuse the last body buffer once nothing references it.

Received tensors are views into their body buffer, so a buffer can only be reused when the caller
has dropped every view of the previous package. Reusing it then avoids the page faults of a fresh
allocation, which cost as much as the transfer itself for large packages on loopback. Whether
anything still references a buffer is read from the storage's reference count; where torch does
not expose it, every receive allocates.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastfl.core.communicator.package import empty_bytes

_use_count = getattr(torch._C, "_storage_Use_Count", None)


def _count(t: Tensor) -> int:
    return int(_use_count(t.untyped_storage()._cdata))


_BASELINE = _count(torch.empty(1)) if _use_count is not None else None


class BodyBuffers:
    """Hand out uint8 body buffers, reusing the previous one when it is free and large enough.

    Args:
        reuse: False allocates every time.
    """

    def __init__(self, reuse: bool = True) -> None:
        self.reuse = reuse and _BASELINE is not None
        self._spare: Tensor | None = None

    def take(self, nbytes: int, device: torch.device) -> Tensor:
        """Return a buffer of exactly `nbytes` bytes (a view of the spare one when possible)."""
        spare = self._spare
        if (
            spare is not None
            and spare.device == device
            and nbytes <= spare.numel()
            and _count(spare) == _BASELINE
        ):
            return spare[:nbytes]
        buf = empty_bytes(nbytes, device)
        if self.reuse and nbytes >= 1 << 16:
            self._spare = buf
        return buf

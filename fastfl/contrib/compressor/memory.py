"""Per-client flat buffers for error feedback and DGC momentum: one row per client of a 2-D tensor.

The 2-D buffer is allocated on first use (torch.zeros: pages stay untouched until a client's row
is written) and grows, keeping its rows, when a client id beyond it arrives. It is saved and
restored with `state_dict()` / `load_state_dict()`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastfl.errors import KernelArgumentError


class FlatMemory:
    """Rows of `numel` elements, one per client id, in a single (num_clients, numel) tensor.

    Args:
        num_clients: rows to allocate at first use (more are added when a larger id arrives).
    """

    def __init__(self, num_clients: int = 1) -> None:
        if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
            raise KernelArgumentError(f"num_clients must be an integer >= 1, got {num_clients!r}")
        self.num_clients = num_clients
        self.buffer: Tensor | None = None

    def row(self, client: int, numel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Client `client`'s row (a view), allocating or growing the buffer as needed.

        Raises:
            KernelArgumentError: a negative client id, or a size/dtype/device other than the
                buffer's (one memory serves one model layout).
        """
        if isinstance(client, bool) or not isinstance(client, int) or client < 0:
            raise KernelArgumentError(f"client must be an integer id >= 0, got {client!r}")
        if self.buffer is None:
            rows = max(self.num_clients, client + 1)
            self.buffer = torch.zeros(rows, numel, dtype=dtype, device=device)
        buf = self.buffer
        if (buf.shape[1], buf.dtype, buf.device) != (numel, dtype, torch.device(device)):
            raise KernelArgumentError(
                f"this memory holds rows of {buf.shape[1]} {buf.dtype} on {buf.device}; got a tensor of "
                f"{numel} {dtype} on {device} (use one compressor per model layout)"
            )
        if client >= buf.shape[0]:
            grown = torch.zeros(max(client + 1, 2 * buf.shape[0]), numel, dtype=dtype, device=buf.device)
            grown[: buf.shape[0]] = buf
            self.buffer = buf = grown
        return buf[client]

    def state_dict(self) -> dict[str, Tensor | None]:
        """The buffer (None before first use), for checkpoints."""
        return {"buffer": None if self.buffer is None else self.buffer.clone()}

    def load_state_dict(self, state: dict[str, Tensor | None]) -> None:
        """Restore a buffer saved by `state_dict`."""
        buf = state.get("buffer")
        if buf is not None and (not isinstance(buf, Tensor) or buf.dim() != 2):
            raise KernelArgumentError(
                f"memory state must hold a 2-D tensor or None, got {type(buf).__name__}"
            )
        self.buffer = None if buf is None else buf.clone()

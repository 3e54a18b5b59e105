"""Per-client flat state: one row per client in one [clients, numel] float32 tensor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["ClientBank"]


class ClientBank:
    """One flat float32 row per client, in one [clients, numel] tensor allocated on first use.

    Args:
        clients: the number of rows.
    """

    def __init__(self, clients: int):
        self.clients = clients
        self.data: Tensor | None = None
        self.touched = torch.zeros(clients, dtype=torch.bool)

    def row(self, client: int, like: Tensor, init: Tensor | None = None) -> Tensor:
        """Client `client`'s row (zeros, or a copy of `init` on its first use), a view into `data`."""
        if self.data is None or self.data.shape[1] != like.numel():
            self.data = torch.zeros(self.clients, like.numel(), dtype=torch.float32, device=like.device)
            self.touched.zero_()
        if not self.touched[client]:
            if init is not None:
                self.data[client].copy_(init.reshape(-1))
            self.touched[client] = True
        return self.data[client]

    def state_dict(self) -> dict[str, Any]:
        """The rows (None before first use) and which clients have one."""
        return {"data": None if self.data is None else self.data.clone(), "touched": self.touched.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        data = state["data"]
        self.data = None if data is None else data.clone()
        self.touched = state["touched"].clone()

"""SCAFFOLD (Karimireddy et al. 2020), option II: control variates correct the client drift."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from fastfl import ops
from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, ClientBank, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler
from fastfl.errors import UpdateFormatError
from fastfl.ops import optim

__all__ = ["ScaffoldClientTrainer", "ScaffoldSerialClientTrainer", "ScaffoldServerHandler"]


class ScaffoldSerialClientTrainer(AlgorithmSerialTrainer):
    """SCAFFOLD's clients: y -= lr (g(y) - c_i + c); then c_i+ = c_i - c + (x - y) / (T lr).

    Downlink ``[x, c]``; uplink per client ``[y - x, c_i+ - c_i]`` and ``[n_k]``. Each client's
    c_i is a row of one flat [clients, numel] buffer (zeros until the client first trains).
    Trains one client at a time (the correction is not in the vmapped step).
    """

    fields = 2
    plain_sgd = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.controls = ClientBank(self.client_num)
        self._c = torch.empty(0)
        self._dc = torch.empty(0)

    def _receive(self, payload: Sequence[Tensor]) -> Tensor:
        if len(payload) < 2:
            raise UpdateFormatError(
                "SCAFFOLD's downlink must be [x, c] (global model, server control variate)"
            )
        x = super()._receive(payload)
        self._c = payload[1].reshape(-1).to(x.device, torch.float32)
        return x

    def _train_client(self, client: int, x: Tensor, loader: Iterable, epochs: int) -> tuple[int, int]:
        lin = self._scratch_like(x)
        torch.sub(self._c, self.controls.row(client, x), out=lin)  # c - c_i
        return self._sgd(loader, epochs, float(self.args["lr"]), lin=lin)

    def _client_vectors(self, k: int, client: int, x: Tensor, row: Tensor) -> list[Tensor]:
        shape = (len(self.param_list), x.numel())
        if k == 0 and (tuple(self._dc.shape) != shape or self._dc.device != x.device):
            self._dc = torch.empty(shape, dtype=torch.float32, device=x.device)
        steps, lr = self.steps[k], float(self.args["lr"])
        c_i, dc = self.controls.row(client, x), self._dc[k]
        y = row.to(x.device)
        if steps > 0:
            optim.control_update_(c_i, x, y, 1.0 / (steps * lr), shift=self._c, delta=dc)
        else:
            dc.zero_()
        row.sub_(x.to(row.device))  # the uplink carries y - x
        return [row, dc]


class ScaffoldServerHandler(AlgorithmServerHandler):
    """SCAFFOLD's server: x <- x + lr_g * mean(y_k - x); c <- c + (1/N) sum(Delta c_k).

    Args:
        server_lr: the global step size eta_g (the paper's default 1).
        weighted: weight the Delta y by n_k (default False: the paper's mean).
        **kwargs: as `AlgorithmServerHandler`.
    """

    fields = 2

    def __init__(self, *args: Any, server_lr: float = 1.0, weighted: bool = False, **kwargs: Any):
        super().__init__(*args, weighted=weighted, **kwargs)
        self.server_lr = float(server_lr)
        self.control = torch.zeros(self._numel, dtype=torch.float32)
        self._dc_sum = torch.zeros(self._numel, dtype=torch.float64)

    @property
    def downlink_package(self) -> list[Tensor]:
        """``[x, c]``."""
        return [*super().downlink_package, self.control]

    def _absorb(self, vectors: list[Tensor], n: float, info: list[float]) -> None:
        super()._absorb(vectors, n, info)
        ops.accumulate_(self._dc_sum, vectors[1], 1.0)

    def _apply(self, x: Tensor) -> None:
        if self._weight > 0:
            x.add_((self._sum * (self.server_lr / self._weight)).float())
        total = max(self.client_num_in_total, 1)
        self.control.add_((self._dc_sum / total).float())

    def _reset_sums(self) -> None:
        super()._reset_sums()
        self._dc_sum.zero_()

    def _state(self) -> dict[str, Any]:
        return {"control": self.control.clone()}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.control.copy_(state["control"])


ScaffoldClientTrainer = one_client(ScaffoldSerialClientTrainer, "ScaffoldClientTrainer")

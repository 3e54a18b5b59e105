"""FedBuff (Nguyen et al. 2022): buffered asynchronous aggregation, K updates per server step."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fastfl import ops
from fastfl.contrib.algorithm._async_client import AsyncAlgorithmSerialTrainer
from fastfl.contrib.algorithm._single import one_client
from fastfl.contrib.algorithm.staleness import fedasync_staleness, fedbuff_staleness
from fastfl.core.model_maintainer import read_params, write_params_
from fastfl.core.server._async_handler import AsyncParameterServerHandler
from fastfl.core.server._base_handler import ParameterServerBackendHandler
from fastfl.errors import UpdateFormatError

__all__ = ["FedBuffClientTrainer", "FedBuffSerialClientTrainer", "FedBuffServerHandler"]


class FedBuffSerialClientTrainer(AsyncAlgorithmSerialTrainer):
    """FedBuff's clients: plain SGD from ``[x, time]``; uplink ``[theta_k - x, Tensor([time, n_k])]``.

    One client per `local_process` call (asynchronous clients report one at a time).
    """

    def local_process(self, id_list: Sequence[int], payload: list[Tensor]) -> list[Tensor]:
        """Train one client from ``[x, time]``; the returned row holds its change theta_k - x."""
        params = super().local_process(id_list, payload)
        params[0].sub_(payload[0].reshape(-1).to(params[0].dtype))
        info = torch.tensor([self.model_time, float(self.sample_counts[0])], dtype=torch.float64)
        self._uplink = [params[0], info]
        return params


class FedBuffServerHandler(ParameterServerBackendHandler):
    """FedBuff's server: buffer staleness-weighted client changes; every K of them, x += lr * mean.

    Args:
        model: the global model (float32).
        total_time: stop when the model time (server steps + 1) reaches this.
        cuda: keep the model on a CUDA device.
        logger: where to log.
        buffer_size: K, the updates per server step.
        server_lr: the server learning rate eta_g.
        staleness: "sqrt" (FedBuff's 1 / sqrt(1 + s)), or FedAsync's "constant", "hinge", "polynomial".
        a: the hinge / polynomial parameter.
        b: the hinge threshold.
    """

    def __init__(
        self,
        model: nn.Module,
        total_time: int,
        cuda: bool = False,
        logger: Any = None,
        *,
        buffer_size: int = 10,
        server_lr: float = 1.0,
        staleness: str = "sqrt",
        a: float = 10.0,
        b: float = 4.0,
    ):
        super().__init__(model, cuda)
        if int(buffer_size) != buffer_size or buffer_size < 1:
            raise ValueError(f"buffer_size must be an integer >= 1, got {buffer_size!r}")
        if staleness != "sqrt":
            fedasync_staleness(staleness, 0.0, a, b)  # validates the name now
        self._logger = logger if logger is not None else logging.getLogger("fastfl.server")
        self.client_num_in_total = 0
        self.total_time, self.time = total_time, 1
        self.buffer_size, self.server_lr = int(buffer_size), float(server_lr)
        self.staleness, self.a, self.b = staleness, a, b
        self._x = read_params(self._model)
        self._buffer = torch.zeros(self._x.numel(), dtype=torch.float64)
        self.buffered = 0
        self.last_weight: float | None = None
        self._lock = threading.Lock()

    # the same model time, stop rule and downlink as FedAsync's core handler
    if_stop = AsyncParameterServerHandler.if_stop
    downlink_package = AsyncParameterServerHandler.downlink_package

    def weight(self, staleness: float) -> float:
        """The weight of an update `staleness` server steps old."""
        if self.staleness == "sqrt":
            return fedbuff_staleness(staleness)
        return fedasync_staleness(self.staleness, staleness, self.a, self.b)

    def _update_global_model(self, payload: Sequence[Tensor]) -> bool:
        """Buffer one change ``[theta_k - x_tau, Tensor([tau, n_k])]``; step after K of them (then True)."""
        if payload is None or len(payload) != 2 or payload[1].numel() < 1:
            raise UpdateFormatError("a FedBuff update must be [change, Tensor([model time, n_k])]")
        change = payload[0].reshape(-1)
        if change.numel() != self._x.numel():
            raise UpdateFormatError(f"the change has {change.numel()} elements, the model {self._x.numel()}")
        with self._lock:
            w = self.weight(self.time - float(payload[1].reshape(-1)[0]))
            ops.accumulate_(self._buffer, change.cpu(), w)
            self.buffered += 1
            self.last_weight = w
            if self.buffered < self.buffer_size:
                return False
            read_params(self._model, out=self._x)
            self._x.add_((self._buffer * (self.server_lr / self.buffered)).float())
            write_params_(self._model, self._x)
            self._buffer.zero_()
            self.buffered = 0
            self.time += 1
            return True

    def state_dict(self) -> dict[str, Any]:
        """The model, the time and the buffer (a half-full buffer is part of the state)."""
        with self._lock:
            return {
                "model": read_params(self._model),
                "time": self.time,
                "buffer": self._buffer.clone(),
                "buffered": self.buffered,
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        with self._lock:
            write_params_(self._model, state["model"])
            self.time, self.buffered = int(state["time"]), int(state["buffered"])
            self._buffer.copy_(state["buffer"])


FedBuffClientTrainer = one_client(FedBuffSerialClientTrainer, "FedBuffClientTrainer")

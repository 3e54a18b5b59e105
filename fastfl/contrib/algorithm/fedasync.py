"""FedAsync (Xie et al. 2019): mix each arriving model into the global one, weighted by staleness."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fastfl.contrib.algorithm._async_client import AsyncAlgorithmSerialTrainer
from fastfl.contrib.algorithm._single import one_client
from fastfl.core.model_maintainer import read_params, write_params_
from fastfl.core.server._async_handler import AsyncParameterServerHandler

__all__ = ["AsyncServerHandler", "FedAsyncClientTrainer", "FedAsyncSerialClientTrainer"]


class FedAsyncSerialClientTrainer(AsyncAlgorithmSerialTrainer):
    """FedAsync's clients: plain SGD from the received ``[x, time]``; uplink ``[theta_k, time]``.

    One client per `local_process` call (asynchronous clients report one at a time).
    """

    def local_process(self, id_list: Sequence[int], payload: list[Tensor]) -> list[Tensor]:
        """Train one client from ``[x, time]``."""
        params = super().local_process(id_list, payload)
        self._uplink = [params[0], torch.tensor([self.model_time])]
        return params


class AsyncServerHandler(AsyncParameterServerHandler):
    """FedAsync's server (FedLab 1.3's name): x <- (1 - a_t) x + a_t theta_k, a_t = alpha s(t - tau).

    Args:
        model: the global model.
        total_time: stop when the model time reaches this.
        cuda: keep the model on a CUDA device.
        logger: where to log.
        alpha: the base mixing weight in [0, 1].
        strategy: "constant", "hinge" or "polynomial" (the paper's formulas; `staleness`).
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
        alpha: float = 0.5,
        strategy: str = "constant",
        a: float = 10.0,
        b: float = 4.0,
    ):
        super().__init__(model, alpha, total_time, strategy, cuda, logger, a=a, b=b, hinge="paper")

    def state_dict(self) -> dict[str, Any]:
        """The global model and the model time."""
        with self._lock:
            return {"model": read_params(self._model), "time": self.time}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        with self._lock:
            write_params_(self._model, state["model"])
            self.time = int(state["time"])


FedAsyncClientTrainer = one_client(FedAsyncSerialClientTrainer, "FedAsyncClientTrainer")

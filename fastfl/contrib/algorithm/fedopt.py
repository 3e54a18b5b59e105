"""Server optimizers: FedAvgM (Hsu et al. 2019) and FedOpt's Adam, Yogi, Adagrad (Reddi et al. 2021)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from fastfl.contrib.algorithm._server import AlgorithmServerHandler
from fastfl.ops import optim

__all__ = ["FedAvgMServerHandler", "FedOptServerHandler"]

OPTIONS = ("adam", "yogi", "adagrad")


class FedOptServerHandler(AlgorithmServerHandler):
    """FedOpt: the pseudo-gradient Delta = mean_k theta_k - x drives a server Adam, Yogi or Adagrad.

    m = b1 m + (1 - b1) Delta; v = b2 v + (1 - b2) Delta^2 (adam), v - (1 - b2) Delta^2
    sign(v - Delta^2) (yogi) or v + Delta^2 (adagrad); x += lr m / (sqrt(v) + tau). v starts at
    tau^2 (the paper's v_{-1} >= tau^2). One pass over the model per round (`server_step_`).

    Args:
        option: "adam", "yogi" or "adagrad".
        server_lr: the server learning rate eta.
        beta1: the first-moment decay.
        beta2: the second-moment decay (unused by adagrad).
        tau: the adaptivity (epsilon) term.
        **kwargs: as `AlgorithmServerHandler`.
    """

    def __init__(
        self,
        *args: Any,
        option: str = "adam",
        server_lr: float = 0.01,
        beta1: float = 0.9,
        beta2: float = 0.99,
        tau: float = 1e-3,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if option not in OPTIONS:
            raise ValueError(f"option must be one of {', '.join(OPTIONS)}, got {option!r}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        self.option, self.server_lr, self.beta1, self.beta2, self.tau = option, server_lr, beta1, beta2, tau
        self.m = torch.zeros(self._numel, dtype=torch.float32)
        self.v = torch.full((self._numel,), tau * tau, dtype=torch.float32)
        self._delta = torch.empty(self._numel, dtype=torch.float32)

    def _pseudo_gradient(self, x: Tensor) -> Tensor:
        return self._delta.copy_(self._sum / self._weight - x.double())

    def _apply(self, x: Tensor) -> None:
        if self._weight > 0:
            delta = self._pseudo_gradient(x)
            optim.server_step_(
                x, delta, self.m, self.v, kind=self.option, lr=self.server_lr, beta1=self.beta1,
                beta2=self.beta2, tau=self.tau,
            )  # fmt: skip

    def _state(self) -> dict[str, Any]:
        return {"m": self.m.clone(), "v": self.v.clone()}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])


class FedAvgMServerHandler(FedOptServerHandler):
    """FedAvgM: server momentum m = beta m + Delta; x += lr m (Delta = mean_k theta_k - x).

    With beta = 0 and lr = 1 it is FedAvg.

    Args:
        server_lr: the server learning rate (1 in Hsu et al.).
        momentum: beta (0.9 in Hsu et al.).
        **kwargs: as `AlgorithmServerHandler`.
    """

    def __init__(self, *args: Any, server_lr: float = 1.0, momentum: float = 0.9, **kwargs: Any):
        super().__init__(*args, server_lr=server_lr, **kwargs)
        self.momentum = float(momentum)

    def _apply(self, x: Tensor) -> None:
        if self._weight > 0:
            delta = self._pseudo_gradient(x)
            optim.server_step_(x, delta, self.m, kind="momentum", lr=self.server_lr, beta1=self.momentum)

    def _state(self) -> dict[str, Any]:
        return {"m": self.m.clone()}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.m.copy_(state["m"])

"""FedNova (Wang et al. 2020): normalise each client's change by its local steps tau_k."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from fastfl import ops
from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler

__all__ = ["FedNovaClientTrainer", "FedNovaSerialClientTrainer", "FedNovaServerHandler"]


class FedNovaSerialClientTrainer(AlgorithmSerialTrainer):
    """FedNova's clients: plain SGD (any number of local steps); uplink ``[theta_k]``, ``[n_k, tau_k]``.

    Unequal local work (`local_epochs`, different data sizes) is what FedNova corrects.
    """

    width = 2

    def _client_info(self, k: int, client: int, x: Tensor, row: Tensor) -> list[float]:
        return [float(self.steps[k])]


class FedNovaServerHandler(AlgorithmServerHandler):
    """FedNova's server: d_k = (x - theta_k) / tau_k; x <- x - tau_eff sum_k p_k d_k, tau_eff = sum_k p_k tau_k.

    p_k = n_k / sum of the round's n (``weighted=False``: 1/K): the weights sum to one over the
    clients that reported, so partial participation does not scale the step (FedLab's default
    'weighted_scale' multiplies it by N/K). A client with tau_k = 0 contributes no change.
    """

    width = 2

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._tau = 0.0  # sum_k p_k tau_k
        self._inv = 0.0  # sum_k p_k / tau_k: the weight of x in sum_k p_k (x - theta_k) / tau_k

    def _absorb(self, vectors: list[Tensor], n: float, info: list[float]) -> None:
        p, tau = (n if self.weighted else 1.0), info[0]
        self._weight += p
        self._tau += p * tau
        if tau > 0:
            ops.accumulate_(self._sum, vectors[0], p / tau)  # the x part is added in _apply
            self._inv += p / tau

    def _apply(self, x: Tensor) -> None:
        if self._weight <= 0:
            return
        direction = x.double() * self._inv - self._sum  # sum_k p_k (x - theta_k) / tau_k
        x.copy_(x.double() - direction * (self._tau / self._weight**2))

    def _reset_sums(self) -> None:
        super()._reset_sums()
        self._tau = 0.0
        self._inv = 0.0


FedNovaClientTrainer = one_client(FedNovaSerialClientTrainer, "FedNovaClientTrainer")

"""FedProx (Li et al. 2020): local SGD on l_k(w) + mu/2 ||w - w^t||^2, partial work allowed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler

__all__ = ["FedProxClientTrainer", "FedProxSerialClientTrainer", "FedProxServerHandler"]


class FedProxSerialClientTrainer(AlgorithmSerialTrainer):
    """FedProx's clients: w -= lr (grad + mu (w - w^t)) per step (the paper's PGD local solver).

    Stragglers doing partial work: pass `local_epochs` (client id -> epochs). mu = 0 is FedAvg
    bit for bit. Trains one client at a time (the proximal term is not in the vmapped step).

    Args:
        mu: the proximal coefficient (>= 0; the paper uses 1 on its synthetic data).
        **kwargs: as `AlgorithmSerialTrainer`.
    """

    plain_sgd = False

    def __init__(self, *args: Any, mu: float = 0.01, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not mu >= 0:
            raise ValueError(f"mu must be >= 0, got {mu!r}")
        self.mu = float(mu)

    def _train_client(self, client: int, x: Tensor, loader: Iterable, epochs: int) -> tuple[int, int]:
        return self._sgd(loader, epochs, float(self.args["lr"]), anchor=x, mu=self.mu)


class FedProxServerHandler(AlgorithmServerHandler):
    """FedProx's server: the sample-weighted average, as FedAvg (the paper's aggregation)."""


FedProxClientTrainer = one_client(FedProxSerialClientTrainer, "FedProxClientTrainer")

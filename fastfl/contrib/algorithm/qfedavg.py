"""q-FedAvg (Li et al. 2020, q-FFL): reweight clients by their loss^q for a fairer accuracy spread."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from fastfl import ops
from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler

__all__ = ["qFedAvgClientTrainer", "qFedAvgSerialClientTrainer", "qFedAvgServerHandler"]


class qFedAvgSerialClientTrainer(AlgorithmSerialTrainer):
    """q-FedAvg's clients: F_k = loss of the whole local set at the received model, then SGD.

    With L = 1 / lr and dw = L (x - theta_k): uplink ``[F_k^q dw]`` and ``[n_k, h_k]``,
    h_k = q F_k^(q-1) ||dw||^2 + L F_k^q (the reference's formulas; FedLab used the summed
    last-epoch training loss as F_k). Vmapped with `batch_clients`.

    Args:
        q: the fairness parameter (0: FedAvg with uniform weights; the paper uses 1 on Synthetic).
        **kwargs: as `AlgorithmSerialTrainer`.
    """

    width = 2

    def __init__(self, *args: Any, q: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not q >= 0:
            raise ValueError(f"q must be >= 0, got {q!r}")
        self.q = float(q)
        self.start_losses: dict[int, float] = {}
        self._h = 0.0

    def _before_client(self, client: int, x: Tensor) -> None:
        self.start_losses[client] = self._eval_loss(client, x)

    def _client_vectors(self, k: int, client: int, x: Tensor, row: Tensor) -> list[Tensor]:
        big_l = 1.0 / float(self.args["lr"])
        loss = self.start_losses[client]
        fq = loss**self.q if self.q else 1.0
        row.sub_(x.to(row.device)).mul_(-big_l)  # dw = L (x - theta_k)
        norm2 = float(row.double().square().sum())
        self._h = (self.q * loss ** (self.q - 1.0) * norm2 if self.q else 0.0) + big_l * fq
        row.mul_(fq)
        return [row]

    def _client_info(self, k: int, client: int, x: Tensor, row: Tensor) -> list[float]:
        return [self._h]

    def local_process(self, id_list: Any, payload: list[Tensor]) -> list[Tensor]:
        """Train; each returned row then holds the client's uplink vector F_k^q dw, not its model."""
        self.start_losses = {}
        return super().local_process(id_list, payload)


class qFedAvgServerHandler(AlgorithmServerHandler):
    """q-FedAvg's server: x <- x - sum_k Delta_k / sum_k h_k.

    Pass ``sampling="weighted", sample_weights=n`` to sample clients proportionally to n_k, as
    the q-FFL reference does.
    """

    width = 2

    def _absorb(self, vectors: list[Tensor], n: float, info: list[float]) -> None:
        ops.accumulate_(self._sum, vectors[0], 1.0)
        self._weight += info[0]

    def _apply(self, x: Tensor) -> None:
        if self._weight > 0:
            x.copy_(x.double() - self._sum / self._weight)


qFedAvgClientTrainer = one_client(qFedAvgSerialClientTrainer, "qFedAvgClientTrainer")

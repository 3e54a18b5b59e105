"""FedDyn (Acar et al. 2021): a dynamic regulariser aligns local and global stationary points."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from fastfl import ops
from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, ClientBank, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler
from fastfl.ops import optim

__all__ = ["FedDynClientTrainer", "FedDynSerialClientTrainer", "FedDynServerHandler"]


class FedDynSerialClientTrainer(AlgorithmSerialTrainer):
    """FedDyn's clients: SGD on l_k(w) - <grad L_k, w> + alpha/2 ||w - w^{t-1}||^2.

    The regulariser's gradient, -grad L_k + alpha (w - w^{t-1}), is added to the flat gradient
    in the step kernel (FedLab's version built it from detached parameters, so it had none).
    After training, grad L_k <- grad L_k - alpha (w_k - w^{t-1}). The negated grad L_k of every
    client is a row of one flat buffer. Trains one client at a time.

    Args:
        alpha: the regularisation strength (the paper tries 1e-1, 1e-2, 1e-3).
        **kwargs: as `AlgorithmSerialTrainer`.
    """

    plain_sgd = False

    def __init__(self, *args: Any, alpha: float = 0.01, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.neg_grads = ClientBank(self.client_num)  # -grad L_k per client

    def _train_client(self, client: int, x: Tensor, loader: Iterable, epochs: int) -> tuple[int, int]:
        neg = self.neg_grads.row(client, x)
        return self._sgd(loader, epochs, float(self.args["lr"]), anchor=x, mu=self.alpha, lin=neg)

    def _client_vectors(self, k: int, client: int, x: Tensor, row: Tensor) -> list[Tensor]:
        neg = self.neg_grads.row(client, x)
        optim.control_update_(neg, row.to(x.device), x, self.alpha)  # -grad L_k += alpha (w_k - x)
        return [row]


class FedDynServerHandler(AlgorithmServerHandler):
    """FedDyn's server: h <- h - (alpha/N) sum_k (w_k - w^{t-1}); w^t = mean(w_k) - h / alpha.

    Args:
        alpha: as the clients' alpha.
        weighted: weight the mean by n_k (default False: the paper's mean).
        **kwargs: as `AlgorithmServerHandler`.
    """

    def __init__(self, *args: Any, alpha: float = 0.01, weighted: bool = False, **kwargs: Any):
        super().__init__(*args, weighted=weighted, **kwargs)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.h = torch.zeros(self._numel, dtype=torch.float32)
        self._raw = torch.zeros(self._numel, dtype=torch.float64)
        self._count = 0

    def _absorb(self, vectors: list[Tensor], n: float, info: list[float]) -> None:
        super()._absorb(vectors, n, info)
        ops.accumulate_(self._raw, vectors[0], 1.0)
        self._count += 1

    def _apply(self, x: Tensor) -> None:
        total = max(self.client_num_in_total, self._count)
        drift = self._raw - self._count * x.double()  # sum_k (w_k - w^{t-1}), counting x K times
        self.h.sub_((drift * (self.alpha / total)).float())
        mean = self._sum / self._weight
        x.copy_(mean - self.h.double() / self.alpha)

    def _reset_sums(self) -> None:
        super()._reset_sums()
        self._raw.zero_()
        self._count = 0

    def _state(self) -> dict[str, Any]:
        return {"h": self.h.clone()}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.h.copy_(state["h"])


FedDynClientTrainer = one_client(FedDynSerialClientTrainer, "FedDynClientTrainer")

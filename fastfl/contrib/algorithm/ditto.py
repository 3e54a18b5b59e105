"""Ditto (Li et al. 2021): FedAvg for the global model plus a proximal personal model per client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, ClientBank, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler

__all__ = ["DittoClientTrainer", "DittoSerialClientTrainer", "DittoServerHandler"]


class DittoSerialClientTrainer(AlgorithmSerialTrainer):
    """Ditto's clients: SGD on the global copy (uploaded), then on a proximal personal model.

    (1) `epochs` of SGD on the global copy (uploaded, as FedAvg); (2) `epochs` of SGD on the
    personal model v_k with l_k(v) + lambda/2 ||v - x||^2, x the received model.

    The personal models are rows of one flat [clients, numel] buffer (a client's row starts as
    the global model it first receives); read one with `personal_model(client)`. Trains one
    client at a time.

    Args:
        lam: lambda, the pull of the personal model towards the global one (FedLab: fixed 0.1).
        **kwargs: as `AlgorithmSerialTrainer`.
    """

    plain_sgd = False

    def __init__(self, *args: Any, lam: float = 0.1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam!r}")
        self.lam = float(lam)
        self.personal = ClientBank(self.client_num)

    def _train_client(self, client: int, x: Tensor, loader: Iterable, epochs: int) -> tuple[int, int]:
        lr = float(self.args["lr"])
        steps, seen = self._sgd(loader, epochs, lr)
        trained = self._scratch_like(x).copy_(self._flat)
        self._flat.copy_(self.personal.row(client, x, init=x))
        self._sgd(loader, epochs, lr, anchor=x, mu=self.lam)
        self.personal.row(client, x).copy_(self._flat)
        self._flat.copy_(trained)  # the global copy is what the client uploads
        self.losses.pop()  # keep the global copy's loss
        return steps, seen

    def personal_model(self, client: int) -> Tensor:
        """Client `client`'s personal parameters (flat; a copy).

        Raises:
            KeyError: the client has not trained yet.
        """
        if self.personal.data is None or not bool(self.personal.touched[client]):
            raise KeyError(f"client {client} has no personal model yet (it has not trained)")
        return self.personal.data[client].clone()


class DittoServerHandler(AlgorithmServerHandler):
    """Ditto's server: the sample-weighted average of the global copies, as FedAvg."""


DittoClientTrainer = one_client(DittoSerialClientTrainer, "DittoClientTrainer")

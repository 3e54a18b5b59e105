"""The base of the asynchronous algorithms' serial trainers (FedAsync, FedBuff)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer
from fastfl.errors import RoleConfigError, UpdateFormatError

__all__ = ["AsyncAlgorithmSerialTrainer"]


class AsyncAlgorithmSerialTrainer(AlgorithmSerialTrainer):
    """An asynchronous algorithm's serial trainer: the downlink is ``[params, Tensor([model time])]``.

    `_receive` keeps the model time in ``self.model_time``; `local_process` trains one client per
    call (asynchronous clients report one at a time).
    """

    def _receive(self, payload: Sequence[Tensor]) -> Tensor:
        if len(payload) < 2:
            raise UpdateFormatError("an asynchronous downlink must be [params, Tensor([model time])]")
        self.model_time = float(payload[1].reshape(-1)[0])
        return super()._receive(payload)

    def local_process(self, id_list: Sequence[int], payload: list[Tensor]) -> list[Tensor]:
        """Train the one client in `id_list` from ``[x, time]``."""
        if len(id_list) != 1:
            raise RoleConfigError(f"{type(self).__name__} trains one client per call, got {list(id_list)}")
        return super().local_process(id_list, payload)

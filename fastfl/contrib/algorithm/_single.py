"""One-client trainers (FedLab's ClientTrainer style) made from the algorithms' serial trainers."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer
from fastfl.core.client import ORDINARY_TRAINER

__all__ = ["one_client"]


def one_client(serial: type[AlgorithmSerialTrainer], name: str) -> type:
    """Make the one-client trainer (FedLab's ClientTrainer style) of an algorithm's serial trainer.

    The class takes ``(model, data_loader, cuda=False, logger=None, args=None, *, criterion=None,
    **hyperparameters)`` and is driven with ``local_process(payload)``.
    """

    def __init__(self, model, data_loader, cuda=False, logger=None, args=None, *, criterion=None, **hparams):
        serial.__init__(self, model, None, [[]], logger, cuda, args, criterion=criterion, **hparams)
        self._data_loader = data_loader
        self.type = ORDINARY_TRAINER

    def _get_dataloader(self, client_id: int) -> Iterable:
        return self._data_loader

    def _steps_per_epoch(self, client: int) -> int:
        return len(self._data_loader)  # type: ignore[arg-type]

    def local_process(self, payload: list[Tensor]) -> None:
        serial.local_process(self, [0], payload)

    doc = f"One client of {serial.__name__}: the same algorithm over a data loader (FedLab's ClientTrainer)."
    namespace = {
        "__init__": __init__,
        "_get_dataloader": _get_dataloader,
        "_steps_per_epoch": _steps_per_epoch,
        "_eval_batches": _get_dataloader,
        "local_process": local_process,
        "plain_sgd": False,
        "__doc__": doc,
        "__module__": serial.__module__,
    }
    return type(name, (serial,), namespace)

"""ClientTrainer and SGDClientTrainer: one client's local training (FedLab 1.2.1 API).

The interface a client manager uses (FedLab's names): ``client_num`` (reported at setup),
``local_process(payload)`` for a trainer of one client or ``local_process(id_list, payload)`` for
a trainer of many (the manager tells them apart by whether `local_process` takes ``id_list``),
and ``uplink_package`` (the list of tensors uploaded, exactly FedLab's). fastfl's optional extra:
``uplink_meta``, a dict sent beside the upload as package metadata (sample counts), which
FedLab-style code never sees. ``type`` (`ORDINARY_TRAINER` / `SERIAL_TRAINER`) is kept for user
code that reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from fastfl.core._updates import counts_meta
from fastfl.core.client import ORDINARY_TRAINER
from fastfl.core.model_maintainer import ModelMaintainer, write_params_

__all__ = ["ClientTrainer", "SGDClientTrainer"]


class ClientTrainer(ModelMaintainer):
    """Base class of a trainer that stands for one client.

    Subclasses implement `local_process(payload)` (train from the server's payload) and
    `uplink_package` (what to send back). As in FedLab 1.2.1 the base class can be instantiated;
    the methods it leaves to subclasses raise NotImplementedError when called.

    Args:
        model: the local model (not copied).
        cuda: train on a CUDA device.
    """

    def __init__(self, model: nn.Module, cuda: bool = False):
        super().__init__(model, cuda)
        self.client_num = 1
        self.type = ORDINARY_TRAINER

    @property
    def _logger(self) -> Any:
        """The older fastfl name of FedLab's `_LOGGER` (the ``fastfl.client`` logger when unset)."""
        return self.__dict__.get("_LOGGER") or logging.getLogger("fastfl.client")

    @_logger.setter
    def _logger(self, value: Any) -> None:
        self._LOGGER = value

    @property
    def uplink_package(self) -> list[Tensor]:
        """The tensors to upload after `local_process`."""
        raise NotImplementedError(f"{type(self).__name__} must define uplink_package")

    @property
    def uplink_meta(self) -> dict[str, int | float]:
        """Metadata sent beside `uplink_package` (fastfl extra; empty: nothing to add)."""
        return {}

    def local_process(self, payload: list[Tensor]) -> None:
        """Train from the server's payload (``payload[0]`` is the global model)."""
        raise NotImplementedError(f"{type(self).__name__} must define local_process(payload)")

    def train(self, *args: Any, **kwargs: Any) -> None:
        """Run local training."""
        raise NotImplementedError(f"{type(self).__name__} must define train()")

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        """Evaluate the local model."""
        raise NotImplementedError(f"{type(self).__name__} must define evaluate()")


class SGDClientTrainer(ClientTrainer):
    """Train with the user's optimizer and criterion over a data loader.

    Args:
        model: the local model; `optimizer` must be bound to its parameters.
        data_loader: an iterable of ``(inputs, labels)`` batches, read once per epoch.
        epochs: local epochs per round.
        optimizer: a torch optimizer (its state, e.g. momentum, persists across rounds).
        criterion: the loss function.
        cuda: train on a CUDA device.
        logger: where to log (default: the ``fastfl.client`` logger), kept as `_LOGGER`.
        report_samples: report the number of samples of the last `train` in `uplink_meta`, so a
            fastfl server can weight FedAvg (the upload itself is always FedLab's ``[params]``).
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable[tuple[Tensor, Tensor]],
        epochs: int,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module,
        cuda: bool = False,
        logger: Any = None,
        *,
        report_samples: bool = True,
    ):
        super().__init__(model, cuda)
        if int(epochs) != epochs or epochs < 0:
            raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
        self._data_loader = data_loader
        self.epochs = int(epochs)
        self.optimizer = optimizer
        self.criterion = criterion
        self._LOGGER = logger if logger is not None else logging.getLogger("fastfl.client")
        self.report_samples = report_samples
        self.model_time = 0
        self.sample_count: int | None = None
        self.last_loss: float | None = None

    @property
    def uplink_package(self) -> list[Tensor]:
        """``[params]`` (FedLab's upload)."""
        return [self.model_parameters]

    @property
    def uplink_meta(self) -> dict[str, int | float]:
        """``{"num_samples": n}`` after a `train` of this class (with `report_samples`), else {}."""
        if not self.report_samples or self.sample_count is None:
            return {}
        return counts_meta([self.sample_count])

    def local_process(self, payload: list[Tensor]) -> None:
        """Train from ``payload[0]``, the global model."""
        self.train(payload[0])

    def train(self, model_parameters: Tensor) -> None:
        """Load the global parameters, then run `epochs` epochs of SGD over the loader."""
        write_params_(self._model, model_parameters)
        self._LOGGER.info("Local train procedure is running")
        device = self.gpu if self.cuda else None
        seen, loss_sum, steps = 0, 0.0, 0
        for epoch in range(self.epochs):
            self._model.train()
            for inputs, labels in self._data_loader:
                if device is not None:
                    inputs, labels = inputs.to(device), labels.to(device)
                loss = self.criterion(self._model(inputs), labels)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                if epoch == 0:
                    seen += len(labels)
                loss_sum += float(loss.detach())
                steps += 1
        if self.epochs > 0:
            self.sample_count = seen
            self.last_loss = loss_sum / steps if steps else None
        self._LOGGER.info("Local train procedure is finished")

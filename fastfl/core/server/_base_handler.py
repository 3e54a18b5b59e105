"""ParameterServerBackendHandler: the base class of the server's model-update logic.

The interface a server manager uses (FedLab 1.2.1's names; docs/compat.md, "Roles"):

- required (FedLab): ``client_num_in_total`` (set by the manager's setup), ``sample_clients()``
  (sync), ``downlink_package``, ``if_stop`` and ``_update_global_model(payload)`` (True ends a
  synchronous round);
- optional fastfl extras, used only when the handler has them: ``receive_meta(meta)`` (the next
  upload's metadata, e.g. sample counts), ``finish_round()`` (end a round with the updates that
  arrived), ``mark_unavailable(ids)`` / ``mark_available(ids)`` (skip clients of lost ranks).

Any object with the required names works with the stock managers, as in FedLab.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fastfl.core.model_maintainer import ModelMaintainer

__all__ = ["ParameterServerBackendHandler"]


class ParameterServerBackendHandler(ModelMaintainer):
    """Hold the global model; subclasses define the downlink, the stop rule and the update.

    As in FedLab 1.2.1 the base class can be instantiated; `_update_global_model` raises
    NotImplementedError and `if_stop` is False.
    """

    def __init__(self, model: nn.Module, cuda: bool = False):
        super().__init__(model, cuda)

    @property
    def _logger(self) -> Any:
        """The older fastfl name of FedLab's `_LOGGER` (the ``fastfl.server`` logger when unset)."""
        return self.__dict__.get("_LOGGER") or logging.getLogger("fastfl.server")

    @_logger.setter
    def _logger(self, value: Any) -> None:
        self._LOGGER = value

    @property
    def model_dtype(self) -> torch.dtype:
        """The dtype of the model's first parameter (float32 for a model without parameters)."""
        return next((p.dtype for p in self._model.parameters()), torch.float32)

    @property
    def downlink_package(self) -> list[Tensor]:
        """What the server sends to a client: ``[params]``."""
        return [self.model_parameters]

    @property
    def if_stop(self) -> bool:
        """True when the run should end."""
        return False

    def _update_global_model(self, payload: Sequence[Tensor]) -> Any:
        """Override this to define how the global model is updated (aggregation or optimization)."""
        raise NotImplementedError(f"{type(self).__name__} must define _update_global_model(payload)")

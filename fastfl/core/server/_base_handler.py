"""ParameterServerBackendHandler: the base class of the server's model-update logic."""

from __future__ import annotations

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
        raise NotImplementedError(f"{type(self).__name__} must define _update_global_model(payload)")

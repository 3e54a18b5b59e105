"""ModelMaintainer: the model a trainer or handler works on, and its flat views (FedLab 1.2.1 API)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fastfl.errors import DeviceUnavailableError
from fastfl.utils.serialization import SerializationTool

__all__ = ["ModelMaintainer", "bind_flat_", "read_params", "write_params_"]


def read_params(model: nn.Module, *, out: Tensor | None = None) -> Tensor:
    """Flatten the model's parameters into one 1-D buffer (`out`, reused, or a new CPU tensor)."""
    return SerializationTool.serialize_model(model, out=out)


def write_params_(model: nn.Module, flat: Tensor, *, mode: str = "copy") -> None:
    """Copy (or add, or subtract) a flat vector into the model's parameters, in place.

    Raises:
        ValueError: `flat` does not hold exactly the model's parameter count.
    """
    SerializationTool.deserialize_model(model, flat, mode)


class ModelMaintainer:
    """Hold a model and expose it as flat parameters.

    As in FedLab 1.2.1 the model is not copied: it is moved to its device in place, so a trainer,
    a handler and user code may share one module (the standalone simulation relies on this).

    Args:
        model: the PyTorch module.
        cuda: move the model to a CUDA device.
        device: the CUDA device to use with `cuda=True` (default: the current one).
    """

    def __init__(self, model: nn.Module, cuda: bool = False, device: str | torch.device | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.cuda = bool(cuda)
        if self.cuda:
            if not torch.cuda.is_available():
                raise DeviceUnavailableError("cuda=True but no CUDA device is available; pass cuda=False")
            self.gpu = torch.device(device) if device is not None else torch.device("cuda")
            self._model = model.cuda(self.gpu)
        else:
            self._model = model.cpu()

    @property
    def model(self) -> nn.Module:
        """The maintained module (shared, not a copy)."""
        return self._model

    @property
    def model_parameters(self) -> Tensor:
        """A fresh 1-D CPU tensor holding every parameter in registration order."""
        return read_params(self._model)

    @property
    def model_gradients(self) -> Tensor:
        """A fresh 1-D CPU tensor holding every parameter's gradient.

        Raises:
            ValueError: a parameter has no gradient yet (run a backward pass first).
        """
        return SerializationTool.serialize_model_gradients(self._model)

    @property
    def shape_list(self) -> list[torch.Size]:
        """The shapes of the model's parameters, in order."""
        return [p.shape for p in self._model.parameters()]

    @property
    def num_params(self) -> int:
        """The total number of parameter elements (the length of `model_parameters`)."""
        return sum(p.numel() for p in self._model.parameters())


def bind_flat_(model: nn.Module) -> Tensor | None:
    """Re-point the model's parameters at views of one new flat buffer (values kept); return it.

    Loading and reading the parameters then take one copy each. Returns None (and changes
    nothing) when the parameters differ in dtype or device, or there are none.
    """
    params = list(model.parameters())
    if not params or len({(p.dtype, p.device) for p in params}) != 1:
        return None
    flat = torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype, device=params[0].device)
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            view = flat[offset : offset + n].view_as(p)
            view.copy_(p.data)
            p.data = view
            offset += n
    return flat

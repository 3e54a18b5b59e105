"""Models of `fastfl run`: an MLP, a small CNN, logistic regression, or the user's `module:Class`."""

from __future__ import annotations

import inspect
import math
from typing import Any

from torch import nn

from fastfl.cli.sources import import_object
from fastfl.errors import ConfigError

__all__ = ["MODELS", "check_model", "make_model"]

MODELS = ("mlp", "cnn", "logistic", "linear")


def check_model(m: dict[str, Any]) -> None:
    """Check the model name (and that a `module:Class` imports and is an nn.Module class)."""
    name = m["name"]
    if ":" in name:
        cls = import_object(name, "model.name")
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            raise ConfigError(f"model.name: {name} is not a torch.nn.Module class")
    elif name not in MODELS:
        raise ConfigError(f"model.name: unknown model {name!r}; accepted: {', '.join(MODELS)}, module:Class")
    elif m["kwargs"]:
        raise ConfigError(f"model.kwargs: only for a module:Class model, not {name!r}")


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, *shape)
    side = math.isqrt(shape[0])
    if len(shape) == 1 and side * side == shape[0]:
        return (1, side, side)
    raise ConfigError(
        f"model.name: cnn needs image inputs (C, H, W) or square flat images; got shape {shape}"
    )


class CNN(nn.Module):
    """Two 3x3 convolutions with max-pooling, then two linear layers (FedLab's CNN, smaller)."""

    def __init__(self, shape: tuple[int, int, int], classes: int, hidden: int = 64):
        super().__init__()
        c, h, w = shape
        self.shape = shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), hidden), nn.ReLU(), nn.Linear(hidden, classes)
        )

    def forward(self, x):
        """Reshape flat inputs to the image shape, then classify."""
        return self.head(self.features(x.reshape(-1, *self.shape)))


def make_model(m: dict[str, Any], input_shape: tuple[int, ...], classes: int) -> nn.Module:
    """Build the configured model for inputs of `input_shape` (one sample) and `classes` labels."""
    name = m["name"]
    if ":" in name:
        cls = import_object(name, "model.name")
        try:
            return cls(**m["kwargs"])
        except TypeError as err:
            raise ConfigError(f"model.kwargs: {name}({m['kwargs']}) failed: {err}") from err
    features = math.prod(input_shape)
    if name == "cnn":
        return CNN(_image_shape(tuple(input_shape)), classes, m["hidden"][0])
    if name in ("logistic", "linear"):
        return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))
    layers: list[nn.Module] = [nn.Flatten()]
    width = features
    for h in m["hidden"]:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)

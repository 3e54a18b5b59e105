"""Argument checks shared by the public kernels: each failure names the argument and the fix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fastfl.dtypes import CODES, FLOAT_DTYPES
from fastfl.errors import KernelArgumentError, KernelTypeError


def tensor(x: object, name: str) -> Tensor:
    """Return x if it is a supported, contiguous tensor, else raise naming `name`."""
    if not isinstance(x, Tensor):
        raise KernelTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in CODES:
        raise KernelTypeError(f"{name} has unsupported dtype {x.dtype}")
    if not x.is_contiguous():
        raise KernelArgumentError(f"{name} is not contiguous; call .contiguous() on it first")
    return x


def dtype(d: object, name: str) -> None:
    """Raise unless d is a torch dtype that the kernels support."""
    if not isinstance(d, torch.dtype):
        raise KernelTypeError(f"{name} must be a torch.dtype, got {type(d).__name__}")
    if d not in CODES:
        raise KernelTypeError(f"{name} is {d}, which the kernels do not support")


def tensors(xs: object, name: str) -> list[Tensor]:
    """Check a sequence of tensors; return it as a list."""
    if isinstance(xs, Tensor) or not isinstance(xs, Sequence | tuple | list):
        raise KernelTypeError(f"{name} must be a sequence of tensors, got {type(xs).__name__}")
    return [tensor(x, f"{name}[{i}]") for i, x in enumerate(xs)]


def floating(x: Tensor, name: str, allowed: Sequence[torch.dtype] = FLOAT_DTYPES) -> None:
    """Raise unless x's dtype is one of `allowed` floating types."""
    if x.dtype not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise KernelTypeError(f"{name} has dtype {x.dtype}; expected one of {names}")


def same_numel(x: Tensor, y: Tensor, xname: str, yname: str) -> None:
    """Raise unless x and y hold the same number of elements."""
    if x.numel() != y.numel():
        raise KernelArgumentError(
            f"{xname} has {x.numel()} elements but {yname} has {y.numel()}; they must match"
        )


def device_of(named: dict[str, Sequence[Tensor]]) -> torch.device | None:
    """Return the one device of all tensors (None if there are none); raise on mixed devices."""
    found: tuple[str, torch.device] | None = None
    for name, group in named.items():
        for i, x in enumerate(group):
            if found is None:
                found = (f"{name}[{i}]", x.device)
            elif x.device != found[1]:
                raise KernelArgumentError(
                    f"{name}[{i}] is on {x.device} but {found[0]} is on {found[1]}; "
                    "move all tensors to one device"
                )
    return None if found is None else found[1]


def weight_list(weights: object, count: int, name: str = "weights") -> list[float]:
    """Turn a list, numpy array or tensor of `count` finite numbers into a list of floats."""
    if isinstance(weights, str | bytes):
        raise KernelTypeError(f"{name} must be a sequence of numbers, got {type(weights).__name__}")
    if isinstance(weights, Tensor):
        values = weights.detach().double().cpu().reshape(-1).tolist()
    else:
        try:
            values = [_number(w, f"{name}[{i}]") for i, w in enumerate(weights)]  # type: ignore[arg-type]
        except (TypeError, ValueError) as err:
            raise KernelTypeError(f"{name} must be a sequence of numbers: {err}") from err
    if len(values) != count:
        raise KernelArgumentError(f"{name} has {len(values)} entries for {count} inputs")
    for i, w in enumerate(values):
        if not math.isfinite(w):
            raise KernelArgumentError(f"{name}[{i}] is {w}; weights must be finite")
    return values


def _number(w: object, name: str) -> float:
    """Return w as a float; strings and other non-numbers are a type error, not a silent parse."""
    if isinstance(w, str | bytes) or not hasattr(w, "__float__"):
        raise KernelTypeError(f"{name} must be a number, got {type(w).__name__}")
    return float(w)  # type: ignore[arg-type]

"""Aggregators: FedAvg and FedAsync with FedLab 1.2.1's results, in one pass and without K×N temporaries.

`fedavg_aggregate` computes Σᵢ wᵢ·pᵢ / Σᵢ wᵢ with one weighted-sum kernel call; FedLab stacks the K
inputs into a K×N tensor and multiplies it by the weights (a second K×N tensor). The result dtype
follows FedLab's torch promotion of the inputs' dtype with the weights' dtype. `StreamingAggregator`
(re-exported here) averages updates that arrive one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fastfl import ops
from fastfl.dtypes import FLOAT_DTYPES, HALF_DTYPES
from fastfl.errors import KernelArgumentError, KernelTypeError
from fastfl.utils._streaming import StreamingAggregator

__all__ = ["Aggregators", "StreamingAggregator"]

Weights = Sequence[float] | np.ndarray | Tensor


def _weight_dtype(weights: Weights | None) -> torch.dtype:
    """The dtype FedLab's normalised weights have: what torch.tensor(weights) / sum gives."""
    if weights is None:
        return torch.get_default_dtype()
    if isinstance(weights, Tensor):
        probe = weights
    elif isinstance(weights, np.ndarray):
        probe = torch.from_numpy(weights)
    else:  # a list: torch.tensor infers float32 for Python floats, int64 for ints, as in FedLab
        try:
            probe = torch.tensor(list(weights))
        except (TypeError, ValueError, RuntimeError):
            return torch.get_default_dtype()
    return probe.dtype if probe.is_floating_point() else torch.get_default_dtype()


def normalized_weights(weights: Weights | None, count: int, name: str = "weights") -> list[float]:
    """Return `weights` (None means equal) divided by their sum, as floats.

    Raises:
        ValueError: wrong length, a negative or non-finite weight, or a zero sum.
        TypeError: `weights` is not a list, numpy array or tensor of numbers.
    """
    if weights is None:
        return [1.0 / count] * count
    if isinstance(weights, Tensor):
        values = weights.detach().to("cpu", torch.float64).reshape(-1).tolist()
    else:
        try:
            values = np.asarray(weights, dtype=np.float64).reshape(-1).tolist()
        except (TypeError, ValueError) as err:
            raise KernelTypeError(f"{name} must be a list, numpy array or tensor of numbers: {err}") from err
    if len(values) != count:
        raise KernelArgumentError(f"{name} has {len(values)} entries but there are {count} inputs")
    for i, w in enumerate(values):
        if not np.isfinite(w) or w < 0:
            raise KernelArgumentError(f"{name}[{i}] is {w}; weights must be finite and non-negative")
    total = float(np.sum(values, dtype=np.float64))
    if total <= 0:
        raise KernelArgumentError(f"{name} sum to zero; give at least one input a positive weight")
    return [w / total for w in values]


def _check_inputs(serialized_params_list: Sequence[Tensor]) -> list[Tensor]:
    if isinstance(serialized_params_list, Tensor) or not isinstance(serialized_params_list, Sequence):
        raise KernelTypeError(
            "serialized_params_list must be a list of tensors, got " + type(serialized_params_list).__name__
        )
    if not serialized_params_list:
        raise KernelArgumentError("serialized_params_list is empty; FedAvg needs at least one tensor")
    first = serialized_params_list[0]
    for i, p in enumerate(serialized_params_list):
        if not isinstance(p, Tensor):
            raise KernelTypeError(
                f"serialized_params_list[{i}] must be a torch.Tensor, got {type(p).__name__}"
            )
        if p.dtype not in FLOAT_DTYPES:
            raise KernelTypeError(
                f"serialized_params_list[{i}] has dtype {p.dtype}; FedAvg takes floating tensors "
                "(cast it with .float() first)"
            )
        if p.shape != first.shape:
            raise KernelArgumentError(
                f"serialized_params_list[{i}] has shape {tuple(p.shape)} but serialized_params_list[0] "
                f"has {tuple(first.shape)}; all inputs must have the same shape"
            )
    return [p.contiguous() for p in serialized_params_list]


class Aggregators:
    """FedAvg and FedAsync aggregation (FedLab's public name; static methods)."""

    @staticmethod
    def fedavg_aggregate(
        serialized_params_list: Sequence[Tensor],
        weights: Weights | None = None,
        *,
        out: Tensor | None = None,
    ) -> Tensor:
        """Return the weighted mean Σᵢ wᵢ·pᵢ / Σᵢ wᵢ of K tensors of one shape (FedAvg).

        Args:
            serialized_params_list: K >= 1 floating tensors of equal shape on one device.
            weights: K non-negative numbers (list, numpy array or tensor) with a positive sum;
                None means equal weights. They are normalised here.
            out: a contiguous destination of the inputs' element count, reused across rounds.

        Returns:
            `out`, or a new tensor of the inputs' shape whose dtype is FedLab's: the promotion of
            the inputs' dtype and the weights' dtype (float32 weights by default, float64 for a
            float64 numpy array), so float16 inputs give float32, as in FedLab.
        """
        xs = _check_inputs(serialized_params_list)
        ws = normalized_weights(weights, len(xs))
        if out is None:
            kind = torch.promote_types(xs[0].dtype, _weight_dtype(weights))
            out = ops.empty(xs[0].shape, dtype=kind, device=xs[0].device)
        elif not isinstance(out, Tensor):
            raise KernelTypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
        elif out.numel() != xs[0].numel() or not out.is_contiguous():
            raise KernelArgumentError(
                f"out must be contiguous with {xs[0].numel()} elements (the inputs' size), "
                f"got shape {tuple(out.shape)}"
            )
        acc = torch.float64 if torch.float64 in (out.dtype, xs[0].dtype) else torch.float32
        if out.dtype in HALF_DTYPES:  # FedLab gives half only for half inputs with half weights
            ops.cast(ops.weighted_sum(xs, ws, acc_dtype=acc), out.dtype, out=out.view(xs[0].shape))
            return out
        return ops.weighted_sum(xs, ws, out=out, acc_dtype=acc)

    @staticmethod
    def fedasync_aggregate(server_param: Tensor, new_param: Tensor, alpha: float) -> Tensor:
        """Return (1 − alpha)·server_param + alpha·new_param as a new tensor (FedAsync).

        The dtype is the promotion of the two inputs' dtypes, as in FedLab. Use
        `fedasync_aggregate_` to update `server_param` in place without a new tensor.

        Raises:
            ValueError: alpha outside [0, 1], or the shapes differ.
        """
        _check_mix(server_param, new_param, alpha)
        kind = torch.promote_types(server_param.dtype, new_param.dtype)
        result = ops.cast(server_param.contiguous(), kind)
        return ops.mix_(result, new_param.contiguous(), float(alpha))

    @staticmethod
    def fedasync_aggregate_(server_param: Tensor, new_param: Tensor, alpha: float) -> Tensor:
        """Set server_param = (1 − alpha)·server_param + alpha·new_param in place; return it."""
        _check_mix(server_param, new_param, alpha)
        if not server_param.is_contiguous():
            raise KernelArgumentError(
                "server_param is not contiguous; in-place mixing needs a contiguous tensor"
            )
        return ops.mix_(server_param, new_param.contiguous(), float(alpha))


def _check_mix(server_param: Tensor, new_param: Tensor, alpha: float) -> None:
    for name, t in (("server_param", server_param), ("new_param", new_param)):
        if not isinstance(t, Tensor):
            raise KernelTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in FLOAT_DTYPES:
            raise KernelTypeError(f"{name} has dtype {t.dtype}; FedAsync takes floating tensors")
    if server_param.shape != new_param.shape:
        raise KernelArgumentError(
            f"new_param has shape {tuple(new_param.shape)} but server_param has "
            f"{tuple(server_param.shape)}; they must match"
        )
    try:
        a = float(alpha)
    except (TypeError, ValueError) as err:
        raise KernelTypeError(f"alpha must be a number, got {type(alpha).__name__}") from err
    if not 0.0 <= a <= 1.0:
        raise KernelArgumentError(f"alpha is {alpha}; FedAsync mixes with 0 <= alpha <= 1")

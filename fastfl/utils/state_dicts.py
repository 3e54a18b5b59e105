"""FedAvg over PyTorch ``state_dict``s: the weighted mean of every tensor, in one pass over memory.

For drop-in use from other frameworks: average the models your clients send as ``state_dict``s
without flattening them first. Each floating tensor is averaged by fastfl's compiled
``weighted_sum`` (each input read once, the output written once, no K-model temporaries).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

import torch
from torch import Tensor

from fastfl import ops
from fastfl.errors import UpdateFormatError

__all__ = ["aggregate_state_dicts"]

_ACC = (torch.float32, torch.float64)


def _check_weights(weights: Sequence[float], count: int) -> list[float]:
    if isinstance(weights, Tensor):
        weights = weights.tolist()
    ws = list(weights)
    if len(ws) != count:
        raise UpdateFormatError(f"got {count} state_dicts but {len(ws)} weights")
    for i, w in enumerate(ws):
        if isinstance(w, bool) or not isinstance(w, Real) or not math.isfinite(w) or w < 0:
            raise UpdateFormatError(f"weights[{i}] must be a finite number >= 0, got {w!r}")
    total = float(sum(ws))
    if total <= 0:
        raise UpdateFormatError("the weights sum to 0; at least one state_dict needs a positive weight")
    return [float(w) / total for w in ws]


def _check_keys(state_dicts: Sequence[Mapping[str, Tensor]]) -> list[str]:
    keys = list(state_dicts[0].keys())
    first = set(keys)
    for i, sd in enumerate(state_dicts[1:], start=1):
        if set(sd.keys()) != first:
            missing = sorted(first - set(sd.keys()))
            extra = sorted(set(sd.keys()) - first)
            what = f"lacks {missing[0]!r}" if missing else f"has the extra key {extra[0]!r}"
            raise UpdateFormatError(f"state_dicts[{i}] {what}; every state_dict needs the same keys")
    for key in keys:
        ref = state_dicts[0][key]
        for i, sd in enumerate(state_dicts[1:], start=1):
            t = sd[key]
            if not isinstance(t, Tensor) or t.shape != ref.shape or t.dtype != ref.dtype:
                got = f"{tuple(t.shape)} {t.dtype}" if isinstance(t, Tensor) else type(t).__name__
                raise UpdateFormatError(
                    f"state_dicts[{i}][{key!r}] is {got}, but state_dicts[0][{key!r}] is "
                    f"{tuple(ref.shape)} {ref.dtype}"
                )
    return keys


def _float_mean(inputs: list[Tensor], ws: list[float], target: Tensor) -> None:
    """Write the weighted mean of `inputs` into `target` (any floating dtype)."""
    xs = [x if x.is_contiguous() else x.contiguous() for x in inputs]
    if target.dtype in _ACC and target.is_contiguous():
        ops.weighted_sum(xs, ws, out=target, acc_dtype=target.dtype)
    else:
        target.copy_(ops.weighted_sum(xs, ws).view(target.shape))


def aggregate_state_dicts(
    state_dicts: Sequence[Mapping[str, Tensor]],
    weights: Sequence[float] | Tensor,
    out: dict[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Weighted mean (FedAvg) of K state_dicts, key by key.

    - Floating tensors (fp32, fp64, fp16, bf16): ``sum_k w_k x_k / sum_k w_k``, computed in fp32
      (fp64 for fp64 tensors) by the compiled kernel, then stored in the tensor's own dtype.
    - Integer tensors (e.g. BatchNorm's ``num_batches_tracked``): the weighted mean computed in
      fp64 and rounded to the nearest integer (half to even), in the tensor's dtype.
    - Other tensors (bool): copied from the first state_dict.

    Args:
        state_dicts: K >= 1 mappings with the same keys, and per key the same shape and dtype.
        weights: K finite weights >= 0 (e.g. sample counts) with a positive sum.
        out: a state_dict to write the result into in place (e.g. ``model.state_dict()``), with the
            same keys and shapes; None allocates a new one.

    Returns:
        `out` (or the new dict), keys in the first state_dict's order.

    Raises:
        UpdateFormatError: no state_dicts, mismatched keys, shapes or dtypes, bad weights, or an
            `out` that does not match.
    """
    if not state_dicts:
        raise UpdateFormatError("state_dicts is empty; give at least one state_dict to aggregate")
    keys = _check_keys(state_dicts)
    ws = _check_weights(weights, len(state_dicts))
    if out is None:
        out = {k: torch.empty_like(state_dicts[0][k], memory_format=torch.contiguous_format) for k in keys}
    elif set(out.keys()) != set(keys):
        raise UpdateFormatError("out must have the same keys as the state_dicts")
    for key in keys:
        inputs = [sd[key] for sd in state_dicts]
        target = out[key]
        if target.shape != inputs[0].shape:
            raise UpdateFormatError(
                f"out[{key!r}] has shape {tuple(target.shape)}, expected {tuple(inputs[0].shape)}"
            )
        with torch.no_grad():
            if inputs[0].is_floating_point():
                _float_mean(inputs, ws, target)
            elif inputs[0].dtype == torch.bool or inputs[0].is_complex():
                target.copy_(inputs[0])
            else:
                acc = sum(w * x.to(torch.float64) for w, x in zip(ws, inputs, strict=True))
                target.copy_(torch.round(acc).to(target.dtype))
    return out

"""The torch backend: the readable reference of every kernel, and the path for CUDA tensors.

Every backend module (this one, `_native`, `_numba`) has the same five functions with the same
signatures. `fastfl.ops` validates all arguments before calling them, so a backend may assume:
tensors are contiguous, on one device, of supported dtypes, and sizes match.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

NAME = "torch"


def cast(srcs: Sequence[Tensor], dsts: Sequence[Tensor]) -> None:
    """Copy each src into the dst of the same position, casting to the dst's dtype."""
    for src, dst in zip(srcs, dsts, strict=True):
        dst.view(-1).copy_(src.reshape(-1))


def combine(srcs: Sequence[Tensor], dsts: Sequence[Tensor], alpha: float) -> None:
    """Compute dst += alpha * src for each pair (alpha is 1 for "add", -1 for "sub")."""
    for src, dst in zip(srcs, dsts, strict=True):
        wide = torch.float64 if torch.float64 in (src.dtype, dst.dtype) else torch.float32
        total = dst.view(-1).to(wide) + alpha * src.reshape(-1).to(wide)
        dst.view(-1).copy_(total)


def weighted_sum(inputs: Sequence[Tensor], weights: Sequence[float], out: Tensor, acc_fp64: bool) -> None:
    """Write sum_i weights[i] * inputs[i] into out, accumulating in fp64 or fp32."""
    acc_dtype = torch.float64 if acc_fp64 else torch.float32
    acc = (
        out.view(-1)
        if out.dtype == acc_dtype
        else torch.empty(out.numel(), dtype=acc_dtype, device=out.device)
    )
    acc.zero_()
    for x, w in zip(inputs, weights, strict=True):
        acc.add_(x.reshape(-1).to(acc_dtype), alpha=w)
    if acc.data_ptr() != out.data_ptr():
        out.view(-1).copy_(acc)


def accumulate_(acc: Tensor, x: Tensor, weight: float) -> None:
    """Compute acc += weight * x in acc's precision."""
    acc.view(-1).add_(x.reshape(-1).to(acc.dtype), alpha=weight)


def mix_(s: Tensor, n: Tensor, alpha: float) -> None:
    """Compute s = (1 - alpha) * s + alpha * n in place (fp64 if s is fp64, else fp32)."""
    wide = torch.float64 if s.dtype == torch.float64 else torch.float32
    flat = s.view(-1)
    if flat.dtype == wide:
        flat.mul_(1.0 - alpha).add_(n.reshape(-1).to(wide), alpha=alpha)
    else:
        flat.copy_(flat.to(wide).mul_(1.0 - alpha).add_(n.reshape(-1).to(wide), alpha=alpha))


def empty(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """A new uninitialised CPU tensor (torch's allocator: no huge-page advice, no pool)."""
    return torch.empty(tuple(shape), dtype=dtype)


def set_pool_limit(nbytes: int) -> int:
    """This backend keeps no pool: nothing to limit; return 0."""
    del nbytes
    return 0

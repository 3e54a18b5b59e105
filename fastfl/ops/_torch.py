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


# Optimizer kernels of fastfl.ops.optim (float32 buffers, validated there).


def optim_local_step(
    w: Tensor, g: Tensor, anchor: Tensor | None, lin: Tensor | None, lr: float, mu: float
) -> None:
    """Compute w -= lr * (g + mu * (w - anchor) + lin); anchor is None when mu is 0."""
    step = g.view(-1).clone()
    if anchor is not None:
        step.add_(w.view(-1) - anchor.view(-1), alpha=mu)
    if lin is not None:
        step.add_(lin.view(-1))
    w.view(-1).sub_(step, alpha=lr)


def optim_control_update(
    state: Tensor, x: Tensor, y: Tensor, shift: Tensor | None, delta: Tensor | None, scale: float
) -> None:
    """Compute state <- state - shift + scale * (x - y); delta <- new - old when given."""
    change = (x.view(-1) - y.view(-1)).mul_(scale)
    if shift is not None:
        change.sub_(shift.view(-1))
    new = state.view(-1) + change
    if delta is not None:
        delta.view(-1).copy_(new - state.view(-1))
    state.view(-1).copy_(new)


def optim_server_step(
    x: Tensor,
    delta: Tensor,
    m: Tensor,
    v: Tensor | None,
    kind: int,
    lr: float,
    b1: float,
    b2: float,
    tau: float,
) -> None:
    """Server optimizer step: kind 0 momentum, 1 adam, 2 yogi, 3 adagrad (see fastfl.ops.optim)."""
    d, mf = delta.view(-1), m.view(-1)
    if kind == 0:
        mf.mul_(b1).add_(d)
        x.view(-1).add_(mf, alpha=lr)
        return
    assert v is not None
    vf, d2 = v.view(-1), d * d
    mf.mul_(b1).add_(d, alpha=1.0 - b1)
    if kind == 1:
        vf.mul_(b2).add_(d2, alpha=1.0 - b2)
    elif kind == 2:
        vf.sub_(d2 * torch.sign(vf - d2), alpha=1.0 - b2)
    else:
        vf.add_(d2)
    x.view(-1).add_(mf / (vf.sqrt() + tau), alpha=lr)

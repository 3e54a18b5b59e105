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


# ---- compression kernels (fastfl.ops.compress); the reference the other backends must match ----

_M32 = 0xFFFFFFFF


def _mix32(h: Tensor) -> Tensor:
    """murmur3's 32-bit finaliser on int64 tensors holding 32-bit values (products wrap mod 2^64)."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _M32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def uniform_at(start: int, count: int, k0: int, k1: int, device: torch.device | None = None) -> Tensor:
    """QSGD's uniform draws in [0, 1) (float64) for element indices start..start+count-1."""
    i = torch.arange(start, start + count, dtype=torch.int64, device=device)
    h = _mix32(((i & _M32) * 0x9E3779B9 + k0) & _M32)
    h = _mix32(h ^ k1 ^ ((i >> 32) & _M32))
    return (h >> 8).double() * (1.0 / 16777216.0)


def qsgd_bits(s: int) -> int:
    """Bits of one QSGD code: a sign bit plus the bit length of s."""
    return 1 + int(s).bit_length()


def sum_squares(x: Tensor) -> float:
    """Sum of squares of x in float64."""
    flat = x.reshape(-1).double()
    return float(torch.dot(flat, flat))


def qsgd_encode(x: Tensor, scale: float, s: int, k0: int, k1: int, out: Tensor) -> None:
    """Quantize x to s levels with stochastic rounding and pack sign+level codes into out's bytes."""
    flat = x.reshape(-1)
    r = flat.double().abs() * scale
    level = r.floor()
    level = torch.where(uniform_at(0, flat.numel(), k0, k1, flat.device) < r - level, level + 1.0, level)
    codes = (level.clamp(max=float(s)).to(torch.int64) << 1) | (flat < 0).to(torch.int64)
    out.copy_(_pack_bits(codes, qsgd_bits(s), out.numel()))


def qsgd_decode(codes: Tensor, step: float, s: int, out: Tensor) -> int:
    """Unpack codes and write sign*level*step into out; return how many levels exceeded s."""
    code = _unpack_bits(codes, qsgd_bits(s), out.numel())
    level = code >> 1
    bad = int((level > s).sum())
    signed = torch.where((code & 1).bool(), -level.clamp(max=s), level.clamp(max=s))
    out.view(-1).copy_(signed.double() * step)  # a zero level decodes as +0.0 whatever its sign bit
    return bad


def _pack_bits(codes: Tensor, bits: int, nbytes: int) -> Tensor:
    """Little-endian bit stream of `bits`-bit codes, zero-padded to nbytes bytes."""
    stream = ((codes.unsqueeze(1) >> torch.arange(bits, device=codes.device)) & 1).reshape(-1)
    stream = torch.cat([stream, stream.new_zeros(nbytes * 8 - stream.numel())])
    weights = 1 << torch.arange(8, device=codes.device)
    return (stream.reshape(-1, 8) * weights).sum(1).to(torch.uint8)


def _unpack_bits(data: Tensor, bits: int, count: int) -> Tensor:
    """The first `count` codes of `bits` bits each from a little-endian bit stream (int64)."""
    stream = ((data.to(torch.int64).unsqueeze(1) >> torch.arange(8, device=data.device)) & 1).reshape(-1)
    stream = stream[: count * bits].reshape(count, bits)
    return (stream << torch.arange(bits, device=data.device)).sum(1)


def _magnitude_keys(x: Tensor) -> Tensor:
    """|x|'s bit pattern as int64, ordered like |x| (NaN above Inf)."""
    if x.dtype == torch.float64:
        return x.view(torch.int64) & 0x7FFFFFFFFFFFFFFF
    return x.view(torch.int32).to(torch.int64) & 0x7FFFFFFF


def topk_select(x: Tensor, k: int, idx: Tensor, vals: Tensor) -> None:
    """The k largest |x| (ties to the lower index), ascending indices into idx, values into vals."""
    flat = x.reshape(-1)
    order = torch.sort(_magnitude_keys(flat), descending=True, stable=True).indices[:k]
    chosen = order.sort().values
    idx.copy_(chosen)
    vals.copy_(flat[chosen])


def gather(x: Tensor, idx: Tensor, vals: Tensor) -> None:
    """vals[j] = x[idx[j]]."""
    vals.copy_(x.reshape(-1)[idx])


def scatter_(out: Tensor, idx: Tensor, vals: Tensor | None) -> None:
    """out[idx[j]] = vals[j] (0 where vals is None)."""
    flat = out.view(-1)
    if vals is None:
        flat[idx] = 0
    else:
        flat[idx] = vals


def dgc_accumulate_(u: Tensor, v: Tensor, g: Tensor, momentum: float, nesterov: bool) -> None:
    """DGC momentum correction: u = m*u + g; v += u (nesterov: u = (u + g)*m; v += u + g)."""
    if nesterov:
        u.add_(g).mul_(momentum)
        v.add_(u).add_(g)
    else:
        u.mul_(momentum).add_(g)
        v.add_(u)


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


def empty(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """A new uninitialised CPU tensor (torch's allocator: no huge-page advice, no pool)."""
    return torch.empty(tuple(shape), dtype=dtype)


def set_pool_limit(nbytes: int) -> int:
    """This backend keeps no pool: nothing to limit; return 0."""
    del nbytes
    return 0

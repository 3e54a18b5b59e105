"""The numba backend: the kernels of `_torch` compiled with numba, the fallback without `fastfl._C`.

Same five functions and semantics as `fastfl.ops._torch` (the reference), which `fastfl.ops`
calls after validating every argument: tensors are contiguous CPU tensors of supported dtypes
with matching sizes. Float tensors reach the kernels as (address, dtype code) pairs, so one
compiled kernel serves every float dtype combination and a whole list of tensors costs one call.
Pairs with an integer or bool side (rare: buffers such as BatchNorm's step counter) go through
numpy, whose C casts equal torch's, with torch's detours added (float32 on the way to or from the
half types, int64 on the way from floats to uint8). Work above `_numba_jit.PARALLEL_MIN` elements
is split over `torch.get_num_threads()` threads. Importing this module raises ImportError when
numba is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fastfl.dtypes import CODES, FLOAT_DTYPES, HALF_DTYPES

try:  # before the kernel modules, so that a missing numba gives this message
    import numba  # noqa: F401
except ImportError as err:
    raise ImportError(
        f"the numba backend needs the numba package ({err}); install it with `pip install numba`"
    ) from err

from fastfl.ops import _numba_cast as cv
from fastfl.ops import _numba_compress as kc
from fastfl.ops import _numba_jit as jit
from fastfl.ops import _numba_kernels as k

NAME = "numba"
# Width of torch's CPU vectors: torch converts a tensor's last elements without SIMD (see _numba_cast).
_SIMD_BYTES = 64 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 32


def _table(srcs: Sequence[Tensor], dsts: Sequence[Tensor]) -> tuple[np.ndarray, ...]:
    """Addresses, dtype codes and element-count prefix sums of (src, dst) pairs."""
    starts = np.zeros(len(dsts) + 1, dtype=np.int64)
    np.cumsum([t.numel() for t in dsts], out=starts[1:])
    return (
        np.array([t.data_ptr() for t in srcs], dtype=np.int64),
        np.array([CODES[t.dtype] for t in srcs], dtype=np.int64),
        np.array([t.data_ptr() for t in dsts], dtype=np.int64),
        np.array([CODES[t.dtype] for t in dsts], dtype=np.int64),
        starts,
    )


def _numpy_cast(src: np.ndarray, dst: np.ndarray) -> None:
    """Cast where one side is an integer or bool: numpy's C casts, with torch's rules for bool/uint8."""
    with np.errstate(invalid="ignore", over="ignore"):
        if dst.dtype == np.bool_:
            np.not_equal(src, 0, out=dst)
        elif src.dtype.kind == "f" and dst.dtype == np.uint8:
            np.copyto(dst, src.astype(np.int64), casting="unsafe")
        else:
            np.copyto(dst, src, casting="unsafe")


def _cast_other(src: Tensor, dst: Tensor) -> None:
    """Convert a pair with an integer or bool side; half types go through float32 as in torch."""
    if src.dtype in HALF_DTYPES:
        wide = torch.empty(src.numel(), dtype=torch.float32)
        cast([src], [wide])
        src = wide
    if dst.dtype in HALF_DTYPES:
        wide = torch.empty(dst.numel(), dtype=torch.float32)
        _numpy_cast(src.reshape(-1).numpy(), wide.numpy())
        cast([wide], [dst])
    else:
        _numpy_cast(src.reshape(-1).numpy(), dst.view(-1).numpy())


def cast(srcs: Sequence[Tensor], dsts: Sequence[Tensor]) -> None:
    """Copy each src into the dst of the same position, casting to the dst's dtype."""
    fast_srcs, fast_dsts = [], []
    for src, dst in zip(srcs, dsts, strict=True):
        if src.dtype == dst.dtype or (src.dtype in FLOAT_DTYPES and dst.dtype in FLOAT_DTYPES):
            fast_srcs.append(src)
            fast_dsts.append(dst)
        elif dst.numel():
            _cast_other(src, dst)
    if fast_srcs:
        sa, sc, da, dc, starts = _table(fast_srcs, fast_dsts)
        total = int(starts[-1])
        jit.run(cv.cast, total, total, sa, sc, da, dc, starts, _SIMD_BYTES)


def combine(srcs: Sequence[Tensor], dsts: Sequence[Tensor], alpha: float) -> None:
    """Compute dst += alpha * src for each pair (alpha is 1 for "add", -1 for "sub")."""
    floats = []
    for src, dst in zip(srcs, dsts, strict=True):
        if src.dtype not in FLOAT_DTYPES:  # like torch: src.to(float32, or float64 if dst is float64)
            wide = torch.empty(
                src.numel(), dtype=torch.float64 if dst.dtype == torch.float64 else torch.float32
            )
            _numpy_cast(src.reshape(-1).numpy(), wide.numpy())
            src = wide
        floats.append(src)
    if floats:
        sa, sc, da, dc, starts = _table(floats, dsts)
        total = int(starts[-1])
        jit.run(cv.combine, total, 2 * total, sa, sc, da, dc, starts, float(alpha))


def weighted_sum(inputs: Sequence[Tensor], weights: Sequence[float], out: Tensor, acc_fp64: bool) -> None:
    """Write sum_i weights[i] * inputs[i] into out, accumulating in fp64 or fp32."""
    addrs = np.array([x.data_ptr() for x in inputs], dtype=np.int64)
    codes = np.array([CODES[x.dtype] for x in inputs], dtype=np.int64)
    ws = np.array(weights, dtype=np.float64)
    n = out.numel()
    args = (addrs, codes, ws, out.data_ptr(), int(CODES[out.dtype]), bool(acc_fp64))
    jit.run(k.weighted_sum, n, n * len(inputs), *args)


def accumulate_(acc: Tensor, x: Tensor, weight: float) -> None:
    """Compute acc += weight * x in acc's precision."""
    n = acc.numel()
    args = (acc.data_ptr(), int(CODES[acc.dtype]), x.data_ptr(), int(CODES[x.dtype]), float(weight))
    jit.run(k.accumulate, n, 2 * n, *args)


def mix_(s: Tensor, n: Tensor, alpha: float) -> None:
    """Compute s = (1 - alpha) * s + alpha * n in place (fp64 if s is fp64, else fp32)."""
    size = s.numel()
    args = (s.data_ptr(), int(CODES[s.dtype]), n.data_ptr(), int(CODES[n.dtype]), float(alpha))
    jit.run(k.mix, size, 2 * size, *args)


# ---- compression kernels (fastfl.ops.compress validates every argument first) ----


def _np(t: Tensor) -> np.ndarray:
    return t.view(-1).numpy()


def _partials(n: int) -> np.ndarray:
    return np.zeros(max(1, (n + jit.CHUNK - 1) // jit.CHUNK), dtype=np.float64)


def sum_squares(x: Tensor) -> float:
    """Sum of squares of x in float64."""
    n = x.numel()
    parts = _partials(n)
    jit.run(kc.sum_squares, n, n, _np(x), parts)
    return float(parts.sum())


def qsgd_encode(x: Tensor, scale: float, s: int, k0: int, k1: int, out: Tensor) -> None:
    """Quantize x to s levels with stochastic rounding and pack sign+level codes into out."""
    n = x.numel()
    bits = 1 + int(s).bit_length()
    jit.run(kc.qsgd_encode, n, n, _np(x), float(scale), int(s), int(k0), int(k1), bits, _np(out))


def qsgd_decode(codes: Tensor, step: float, s: int, out: Tensor) -> int:
    """Unpack codes and write sign*level*step into out; return how many levels exceeded s."""
    n = out.numel()
    bad = _partials(n)
    bits = 1 + int(s).bit_length()
    jit.run(kc.qsgd_decode, n, n, _np(codes), float(step), int(s), bits, _np(out), bad)
    return int(bad.sum())


def topk_select(x: Tensor, k: int, idx: Tensor, vals: Tensor) -> None:
    """The k largest |x| (ties to the lower index), ascending indices into idx, values into vals."""
    if k == 0:
        return
    xs = _np(x)
    if k >= x.numel():
        _np(idx)[:] = np.arange(x.numel())
        _np(vals)[:] = xs
        return
    keys, shift = kc.keys(xs)
    kc.topk_select_keys(keys, shift, xs, int(k), _np(idx), _np(vals))


def gather(x: Tensor, idx: Tensor, vals: Tensor) -> None:
    """vals[j] = x[idx[j]]."""
    if idx.numel():
        kc.gather(_np(x), _np(idx), _np(vals))


def scatter_(out: Tensor, idx: Tensor, vals: Tensor | None) -> None:
    """out[idx[j]] = vals[j] (0 where vals is None)."""
    if idx.numel():
        flat = _np(out)
        kc.scatter(flat, _np(idx), flat[:0] if vals is None else _np(vals), vals is None)


def dgc_accumulate_(u: Tensor, v: Tensor, g: Tensor, momentum: float, nesterov: bool) -> None:
    """DGC momentum correction: u = m*u + g; v += u (nesterov: u = (u + g)*m; v += u + g)."""
    n = g.numel()
    us = _np(u)
    jit.run(kc.dgc, n, 3 * n, us, _np(v), _np(g), us.dtype.type(momentum), bool(nesterov))


# Optimizer kernels of fastfl.ops.optim (float32 buffers, validated there).


def _addr(t: Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


def optim_local_step(
    w: Tensor, g: Tensor, anchor: Tensor | None, lin: Tensor | None, lr: float, mu: float
) -> None:
    """Compute w -= lr * (g + mu * (w - anchor) + lin); anchor is None when mu is 0."""
    from fastfl.ops import _numba_optim as ko

    n = w.numel()
    jit.run(
        ko.local_step, n, 3 * n, w.data_ptr(), g.data_ptr(), _addr(anchor), _addr(lin), float(lr), float(mu)
    )


def optim_control_update(
    state: Tensor, x: Tensor, y: Tensor, shift: Tensor | None, delta: Tensor | None, scale: float
) -> None:
    """Compute state <- state - shift + scale * (x - y); delta <- new - old when given."""
    from fastfl.ops import _numba_optim as ko

    n = state.numel()
    args = (state.data_ptr(), x.data_ptr(), y.data_ptr(), _addr(shift), _addr(delta), float(scale))
    jit.run(ko.control_update, n, 4 * n, *args)


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
    from fastfl.ops import _numba_optim as ko

    n = x.numel()
    args = (
        x.data_ptr(),
        delta.data_ptr(),
        m.data_ptr(),
        _addr(v),
        int(kind),
        float(lr),
        float(b1),
        float(b2),
    )
    jit.run(ko.server_step, n, 4 * n, *args, float(tau))


def empty(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """A new uninitialised CPU tensor (torch's allocator: no huge-page advice, no pool)."""
    return torch.empty(tuple(shape), dtype=dtype)


def set_pool_limit(nbytes: int) -> int:
    """This backend keeps no pool: nothing to limit; return 0."""
    del nbytes
    return 0

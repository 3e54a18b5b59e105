"""The native backend: fastfl.ops' five kernels on the compiled core `fastfl._C` (csrc/).

Tensors go to `_C` as they are, with their dtype codes; `_C` reads each one's data pointer and
size through the tensor's Python API (about 1 us per tensor, against 4 us for `.numpy()`), checks
that it is a contiguous CPU tensor of the stated dtype, and runs the whole operation in one call
with the GIL released. `fastfl.ops` has validated everything before these functions run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from fastfl.dtypes import CODES
from fastfl.errors import KernelArgumentError

NAME = "native"
ABI_VERSION = 2  # must equal FASTFL_ABI_VERSION in csrc/bindings.cpp
_REBUILD = "rebuild it with `make setup` or `pip install --no-build-isolation -e .`"

try:
    from fastfl import _C
except ImportError as err:
    raise ImportError(f"fastfl._C is not built or does not load ({err}); {_REBUILD}") from err
if getattr(_C, "ABI_VERSION", None) != ABI_VERSION:
    raise ImportError(
        f"fastfl._C is a stale build (ABI version {getattr(_C, 'ABI_VERSION', None)}, "
        f"this fastfl needs {ABI_VERSION}); {_REBUILD}"
    )


def threads() -> int:
    """Return the thread count for large buffers: FASTFL_NUM_THREADS, else torch.get_num_threads().

    Raises:
        KernelArgumentError: FASTFL_NUM_THREADS is set but is not a positive integer.
    """
    value = os.environ.get("FASTFL_NUM_THREADS")
    if value is None:
        return torch.get_num_threads()
    count = int(value) if value.strip().isdigit() else 0
    if count < 1:
        raise KernelArgumentError(
            f"FASTFL_NUM_THREADS={value!r} is not a positive integer; unset it or set e.g. 2"
        )
    return count


def _codes(tensors: Sequence[Tensor]) -> list[int]:
    return [CODES[t.dtype] for t in tensors]


def cast(srcs: Sequence[Tensor], dsts: Sequence[Tensor]) -> None:
    """Copy each src into the dst of the same position, casting to the dst's dtype."""
    _C.cast(srcs, _codes(srcs), dsts, _codes(dsts), threads())


def combine(srcs: Sequence[Tensor], dsts: Sequence[Tensor], alpha: float) -> None:
    """Compute dst += alpha * src for each pair, in fp32 (fp64 if either side is fp64)."""
    _C.combine(srcs, _codes(srcs), dsts, _codes(dsts), alpha, threads())


def weighted_sum(inputs: Sequence[Tensor], weights: Sequence[float], out: Tensor, acc_fp64: bool) -> None:
    """Write sum_i weights[i] * inputs[i] into out, accumulating in fp64 or fp32."""
    _C.weighted_sum(inputs, _codes(inputs), list(weights), out, CODES[out.dtype], acc_fp64, threads())


def accumulate_(acc: Tensor, x: Tensor, weight: float) -> None:
    """Compute acc += weight * x in acc's precision."""
    _C.accumulate_(acc, CODES[acc.dtype], x, CODES[x.dtype], weight, threads())


def mix_(s: Tensor, n: Tensor, alpha: float) -> None:
    """Compute s = (1 - alpha) * s + alpha * n in place (fp64 if s is fp64, else fp32)."""
    _C.mix_(s, CODES[s.dtype], n, CODES[n.dtype], alpha, threads())


# ---- compression kernels (fastfl.ops.compress validates every argument first) ----

COMPRESS_ABI_VERSION = 1  # must equal COMPRESS_ABI_VERSION in csrc/bindings.cpp


def _compress_c() -> object:
    """`_C`, checked to carry the compression kernels this module calls."""
    if getattr(_C, "COMPRESS_ABI_VERSION", None) != COMPRESS_ABI_VERSION:
        raise ImportError(f"fastfl._C lacks the compression kernels of this fastfl; {_REBUILD}")
    return _C


def sum_squares(x: Tensor) -> float:
    """Sum of squares of x in float64."""
    return float(_compress_c().sum_squares(x, CODES[x.dtype], threads()))


def qsgd_encode(x: Tensor, scale: float, s: int, k0: int, k1: int, out: Tensor) -> None:
    """Quantize x to s levels with stochastic rounding and pack sign+level codes into out."""
    _compress_c().qsgd_encode(x, CODES[x.dtype], scale, s, k0, k1, out, threads())


def qsgd_decode(codes: Tensor, step: float, s: int, out: Tensor) -> int:
    """Unpack codes and write sign*level*step into out; return how many levels exceeded s."""
    return int(_compress_c().qsgd_decode(codes, step, s, out, CODES[out.dtype], threads()))


def topk_select(x: Tensor, k: int, idx: Tensor, vals: Tensor) -> None:
    """The k largest |x| (ties to the lower index), ascending indices into idx, values into vals."""
    _compress_c().topk_select(x, CODES[x.dtype], k, idx, vals)


def gather(x: Tensor, idx: Tensor, vals: Tensor) -> None:
    """vals[j] = x[idx[j]]."""
    _compress_c().gather(x, CODES[x.dtype], idx, vals)


def scatter_(out: Tensor, idx: Tensor, vals: Tensor | None) -> None:
    """out[idx[j]] = vals[j] (0 where vals is None)."""
    _compress_c().scatter_(out, CODES[out.dtype], idx, vals)


def dgc_accumulate_(u: Tensor, v: Tensor, g: Tensor, momentum: float, nesterov: bool) -> None:
    """DGC momentum correction: u = m*u + g; v += u (nesterov: u = (u + g)*m; v += u + g)."""
    _compress_c().dgc_accumulate_(u, v, g, CODES[g.dtype], momentum, nesterov, threads())


# Optimizer kernels of fastfl.ops.optim (float32 buffers, validated there).
_OPTIM = ("optim_local_step", "optim_control_update", "optim_server_step")


def _optim_fn(name: str):
    fn = getattr(_C, name, None)
    if fn is None:
        raise KernelArgumentError(
            f"fastfl._C has no {name} (a build older than fastfl.ops.optim); {_REBUILD}"
        )
    return fn


def optim_local_step(
    w: Tensor, g: Tensor, anchor: Tensor | None, lin: Tensor | None, lr: float, mu: float
) -> None:
    """Compute w -= lr * (g + mu * (w - anchor) + lin); anchor is None when mu is 0."""
    _optim_fn(_OPTIM[0])(w, g, anchor, lin, CODES[torch.float32], lr, mu, threads())


def optim_control_update(
    state: Tensor, x: Tensor, y: Tensor, shift: Tensor | None, delta: Tensor | None, scale: float
) -> None:
    """Compute state <- state - shift + scale * (x - y); delta <- new - old when given."""
    _optim_fn(_OPTIM[1])(state, x, y, shift, delta, CODES[torch.float32], scale, threads())


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
    _optim_fn(_OPTIM[2])(x, delta, m, v, CODES[torch.float32], kind, lr, b1, b2, tau, threads())


# DLPack (type code, bits) of each dtype that `empty` can allocate.
_DLPACK = {
    torch.int8: (0, 8),
    torch.int16: (0, 16),
    torch.int32: (0, 32),
    torch.int64: (0, 64),
    torch.uint8: (1, 8),
    torch.float16: (2, 16),
    torch.float32: (2, 32),
    torch.float64: (2, 64),
    torch.bfloat16: (4, 16),
    torch.bool: (6, 8),
}


def empty(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """A new uninitialised CPU tensor on huge-page-advised memory, reused from the pool when warm."""
    code, bits = _DLPACK[dtype]
    return torch.from_dlpack(_C.empty_pages(list(shape), code, bits))


ISA_LEVELS = ("scalar", "avx2", "avx512")


def _isa_from_env() -> None:
    """Apply FASTFL_ISA (scalar, avx2 or avx512: the widest vector level the kernels may use)."""
    value = os.environ.get("FASTFL_ISA")
    if value is None:
        _C.set_isa(ISA_LEVELS[-1])  # no cap
        return
    if value.strip().lower() not in ISA_LEVELS:
        raise KernelArgumentError(
            f"FASTFL_ISA={value!r} is not one of {', '.join(ISA_LEVELS)}; unset it or pick one"
        )
    _C.set_isa(value.strip().lower())


_isa_from_env()


def isa() -> str:
    """Return the vector level the kernels run at: the CPU's widest, capped by FASTFL_ISA/set_isa."""
    return str(_C.isa())


def set_isa(cap: str) -> str:
    """Cap the vector level (scalar, avx2 or avx512) for the process; return the previous cap."""
    return str(_C.set_isa(cap))


def _pool_limit_from_env() -> None:
    """Apply FASTFL_POOL_MB (megabytes of freed large buffers to keep) if it is set."""
    value = os.environ.get("FASTFL_POOL_MB")
    if value is None:
        return
    if not value.strip().isdigit():
        raise KernelArgumentError(
            f"FASTFL_POOL_MB={value!r} is not a non-negative integer; unset it or set e.g. 256"
        )
    _C.set_pool_limit(int(value) << 20)


_pool_limit_from_env()


def set_pool_limit(nbytes: int) -> int:
    """Set the most bytes of freed large buffers kept for reuse; return the previous limit."""
    return int(_C.set_pool_limit(nbytes))

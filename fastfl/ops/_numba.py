"""The numba backend: the kernels of `_torch` compiled with numba, the fallback without `fastfl._C`.

Same five functions and semantics as `fastfl.ops._torch` (the reference), which `fastfl.ops`
calls after validating every argument: tensors are contiguous CPU tensors of supported dtypes
with matching sizes. Tensors reach the kernels as (address, dtype code) pairs, so one compiled
kernel serves every dtype combination and a whole list of tensors costs one call. Work above
`_numba_jit.PARALLEL_MIN` elements is split over `torch.get_num_threads()` threads; the GIL is
released while a kernel runs. Importing this module raises ImportError when numba is missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fastfl.dtypes import CODES
from fastfl.ops import _numba_convert as cv
from fastfl.ops import _numba_jit as jit
from fastfl.ops import _numba_kernels as k

NAME = "numba"
# Width of torch's CPU vectors: torch converts a tensor's last elements without SIMD (see _numba_convert).
_SIMD_BYTES = 64 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 32


def _table(srcs: Sequence[Tensor], dsts: Sequence[Tensor]) -> tuple[np.ndarray, ...]:
    """Addresses, dtype codes and element-count prefix sums of (src, dst) pairs."""
    count = len(srcs)
    table = np.empty((5, count), dtype=np.int64)
    starts = np.zeros(count + 1, dtype=np.int64)
    for i, (src, dst) in enumerate(zip(srcs, dsts, strict=True)):
        table[0, i] = src.data_ptr()
        table[1, i] = CODES[src.dtype]
        table[2, i] = dst.data_ptr()
        table[3, i] = CODES[dst.dtype]
        starts[i + 1] = starts[i] + dst.numel()
    return table[0], table[1], table[2], table[3], starts


def convert(srcs: Sequence[Tensor], dsts: Sequence[Tensor]) -> None:
    """Copy each src into the dst of the same position, casting to the dst's dtype."""
    if not srcs:
        return
    sa, sc, da, dc, starts = _table(srcs, dsts)
    jit.run(cv.CONVERT, int(starts[-1]), sa, sc, da, dc, starts, _SIMD_BYTES)


def combine(srcs: Sequence[Tensor], dsts: Sequence[Tensor], alpha: float) -> None:
    """Compute dst += alpha * src for each pair (alpha is 1 for "add", -1 for "sub")."""
    if not srcs:
        return
    sa, sc, da, dc, starts = _table(srcs, dsts)
    jit.run(cv.COMBINE, 2 * int(starts[-1]), sa, sc, da, dc, starts, float(alpha))


def weighted_sum(inputs: Sequence[Tensor], weights: Sequence[float], out: Tensor, acc_fp64: bool) -> None:
    """Write sum_i weights[i] * inputs[i] into out, accumulating in fp64 or fp32."""
    addrs = np.array([x.data_ptr() for x in inputs], dtype=np.int64)
    codes = np.array([CODES[x.dtype] for x in inputs], dtype=np.int64)
    ws = np.array(weights, dtype=np.float64)
    n = out.numel()
    out_code = int(CODES[out.dtype])
    jit.run(k.WEIGHTED_SUM, n * len(inputs), addrs, codes, ws, out.data_ptr(), out_code, n, bool(acc_fp64))


def accumulate_(acc: Tensor, x: Tensor, weight: float) -> None:
    """Compute acc += weight * x in acc's precision."""
    n = acc.numel()
    args = (acc.data_ptr(), int(CODES[acc.dtype]), x.data_ptr(), int(CODES[x.dtype]), float(weight), n)
    jit.run(k.ACCUMULATE, 2 * n, *args)


def mix_(s: Tensor, n: Tensor, alpha: float) -> None:
    """Compute s = (1 - alpha) * s + alpha * n in place (fp64 if s is fp64, else fp32)."""
    size = s.numel()
    args = (s.data_ptr(), int(CODES[s.dtype]), n.data_ptr(), int(CODES[n.dtype]), float(alpha), size)
    jit.run(k.MIX, 2 * size, *args)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the serial kernels for float32 work."""
    x = torch.zeros(4)
    y = torch.zeros(4, dtype=torch.float16)
    convert([x], [y])
    combine([y], [x], 1.0)
    weighted_sum([x, y], [0.5, 0.5], x, False)
    accumulate_(x, y, 1.0)
    mix_(x, y, 0.5)

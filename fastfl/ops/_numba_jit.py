"""numba plumbing for the numba backend: compile options, threads, intrinsics and half-float bits.

Importing this module raises ImportError (naming numba) when numba is not installed. It also
picks numba's fork-safe threading layer unless the user chose one: GNU OpenMP, numba's default on
Linux, kills any forked child that runs a parallel kernel, and FL simulations fork.
"""

from __future__ import annotations

import os
import threading
import types as pytypes
from collections.abc import Callable
from typing import Any

try:
    import numba
    import numpy as np
    from llvmlite import ir
    from numba import types
    from numba.core import config
    from numba.extending import intrinsic
    from numba.np.ufunc import parallel as _parallel
except ImportError as err:  # pragma: no cover - exercised only without numba
    raise ImportError(
        f"the numba backend needs the numba package ({err}); install it with `pip install numba`"
    ) from err

from fastfl.dtypes import DType

if "NUMBA_THREADING_LAYER" not in os.environ and not _parallel._is_initialized:
    config.THREADING_LAYER = "forksafe"

PARALLEL_MIN = 1 << 18  # elements of work below which kernels stay single-threaded
CHUNK = 1024  # elements per scratch buffer: a few KiB, so scratch stays in L1
I8, I16, I32, I64 = (int(DType.INT8), int(DType.INT16), int(DType.INT32), int(DType.INT64))
F16, F32, F64, BF16 = (int(DType.FLOAT16), int(DType.FLOAT32), int(DType.FLOAT64), int(DType.BFLOAT16))
U8, BOOL = int(DType.UINT8), int(DType.BOOL)
ITEMSIZE = np.array([1, 2, 4, 8, 2, 4, 8, 2, 1, 1], dtype=np.int64)  # indexed by dtype code
_parallel_lock = threading.Lock()  # numba's workqueue layer must not be entered by two threads at once


def compile_pair(fn: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Compile `fn` twice, lazily: a serial variant (prange runs as range) and a parallel one.

    Both release the GIL and cache their machine code on disk; when no cache directory is
    writable (numba also honours NUMBA_CACHE_DIR) they compile in memory instead.
    """
    serial = _njit(fn, "serial", parallel=False)
    par = _njit(fn, "parallel", parallel=True)
    return serial, par


def _njit(fn: Callable[..., Any], suffix: str, parallel: bool) -> Callable[..., Any]:
    # A distinct qualname per variant keeps the two variants apart in numba's on-disk cache.
    clone = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = f"{fn.__qualname__}_{suffix}"
    clone.__module__ = fn.__module__
    try:
        return numba.njit(nogil=True, parallel=parallel, cache=True)(clone)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, parallel=parallel, cache=False)(clone)


def threads() -> int:
    """Threads for one parallel kernel: torch's intra-op count, capped by numba's pool."""
    import torch

    return max(1, min(torch.get_num_threads(), config.NUMBA_NUM_THREADS))


def run(pair: tuple[Callable[..., Any], Callable[..., Any]], work: int, *args: Any) -> None:
    """Call the parallel variant for big work when no other thread is in a parallel kernel."""
    serial, par = pair
    nthreads = threads() if work >= PARALLEL_MIN else 1
    if nthreads > 1 and _parallel_lock.acquire(blocking=False):
        try:
            numba.set_num_threads(nthreads)
            par(*args, nthreads)
        finally:
            _parallel_lock.release()
    else:
        serial(*args, 1)


@intrinsic
def vptr(typingctx, addr):
    """Turn an integer address into a void pointer (for numba.carray)."""
    sig = types.voidptr(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.IntType(8).as_pointer())

    return sig, codegen


@intrinsic
def f32_bits(typingctx, x):
    """Reinterpret a float32 as its uint32 bits."""
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def bits_f32(typingctx, u):
    """Reinterpret uint32 bits as a float32."""
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def fma(typingctx, a, b, c):
    """Fused a * b + c in the float type of c (what torch's vectorised add_(alpha=) computes)."""
    if not isinstance(c, types.Float):
        return None
    sig = c(c, c, c)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(c)
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)

    return sig, codegen


@numba.njit
def block(n, nblocks, b):
    """Elements [lo, hi) of block b when n elements are cut into nblocks CHUNK-aligned blocks."""
    per = ((n + nblocks - 1) // nblocks + CHUNK - 1) // CHUNK * CHUNK
    lo = min(n, b * per)
    return lo, min(n, lo + per)


@numba.njit
def is_float(code):
    """Whether a dtype code is one of the four floating types."""
    return code in (F16, F32, F64, BF16)


@numba.njit
def half_to_f32(h):
    """Decode float16 bits exactly; NaN payloads are kept with the quiet bit set."""
    h = np.int64(h)
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0x1F:
        bits = 0x7F800000 | (m << 13) | (0x400000 if m != 0 else 0)
    elif e == 0:
        bits = np.int64(f32_bits(np.float32(m) * np.float32(2.0**-24)))
    else:
        bits = ((e + 112) << 23) | (m << 13)
    return bits_f32(np.uint32(sign | bits))


@numba.njit
def f32_to_half(x):
    """Encode a float32 as float16 bits, rounding to nearest even; NaN keeps its top payload bits."""
    b = np.int64(f32_bits(x))
    a = b & 0x7FFFFFFF
    if a > 0x7F800000:
        h = 0x7E00 | ((a >> 13) & 0x3FF)
    elif a >= 0x477FF000:  # 65520 and up round to infinity
        h = 0x7C00
    elif a >= 0x38800000:  # normal half: rebias the exponent, round the 13 dropped bits
        h = (a + 0xFFF + ((a >> 13) & 1) - 0x38000000) >> 13
    else:  # subnormal half: let the FPU round at 2**-24 by adding 0.5
        h = np.int64(f32_bits(bits_f32(np.uint32(a)) + np.float32(0.5))) - 0x3F000000
    return np.uint16(((b >> 16) & 0x8000) | h)


@numba.njit
def bf16_to_f32(h):
    """Decode bfloat16 bits (the top half of a float32)."""
    return bits_f32(np.uint32(np.int64(h) << 16))


@numba.njit
def f32_to_bf16(x, nan_bits):
    """Encode a float32 as bfloat16 bits, rounding to nearest even; NaN becomes nan_bits."""
    b = np.int64(f32_bits(x))
    if (b & 0x7FFFFFFF) > 0x7F800000:
        return np.uint16(nan_bits)
    return np.uint16((b + 0x7FFF + ((b >> 16) & 1)) >> 16)

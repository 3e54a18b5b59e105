"""numba plumbing for the numba backend: compile options, threads, dtype codes and intrinsics."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from fastfl.dtypes import DType
from fastfl.errors import KernelArgumentError

PARALLEL_MIN = 1 << 18  # elements of work below which kernels stay single-threaded
CHUNK = 4096  # elements per scratch buffer (16-32 KiB): big enough for the prefetchers, fits L1/L2
I8, I16, I32, I64 = (int(DType.INT8), int(DType.INT16), int(DType.INT32), int(DType.INT64))
F16, F32, F64, BF16 = (int(DType.FLOAT16), int(DType.FLOAT32), int(DType.FLOAT64), int(DType.BFLOAT16))
U8, BOOL = int(DType.UINT8), int(DType.BOOL)
ITEMSIZE = np.array([1, 2, 4, 8, 2, 4, 8, 2, 1, 1], dtype=np.int64)  # indexed by dtype code
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def compile_kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Compile `fn` lazily, releasing the GIL, with its machine code cached on disk.

    When no cache directory is writable (numba also honours NUMBA_CACHE_DIR) it compiles in
    memory instead. Kernels take the element range [lo, hi) they work on as last arguments.
    """
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, cache=False)(fn)


def threads() -> int:
    """Threads for one big kernel call: FASTFL_NUM_THREADS, else torch.get_num_threads().

    Raises:
        KernelArgumentError: FASTFL_NUM_THREADS is set but is not a positive integer.
    """
    value = os.environ.get("FASTFL_NUM_THREADS")
    if value is None:
        import torch

        return max(1, torch.get_num_threads())
    count = int(value) if value.strip().isdigit() else 0
    if count < 1:
        raise KernelArgumentError(
            f"FASTFL_NUM_THREADS={value!r} is not a positive integer; unset it or set e.g. 2"
        )
    return count


def run(kernel: Callable[..., Any], total: int, work: int, *args: Any) -> None:
    """Call kernel(*args, lo, hi) over [0, total), split over threads when `work` is big.

    The calling thread runs the first block itself and pool threads run the others; kernels
    release the GIL, so blocks run in parallel. (Plain Python threads rather than numba's
    parallel=True: half the compile time, safe to call from several threads at once, and safe
    after fork, where numba's GNU OpenMP layer kills the child.)
    """
    nthreads = min(threads(), max(1, total // CHUNK)) if work >= PARALLEL_MIN else 1
    if nthreads == 1:
        kernel(*args, 0, total)
        return
    per = ((total + nthreads - 1) // nthreads + CHUNK - 1) // CHUNK * CHUNK
    bounds = [(lo, min(total, lo + per)) for lo in range(0, total, per)]
    pool = _get_pool(len(bounds) - 1)
    futures = [pool.submit(kernel, *args, lo, hi) for lo, hi in bounds[1:]]
    try:
        kernel(*args, *bounds[0])
    finally:
        for future in futures:
            future.result()


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            old, _pool, _pool_size = (
                _pool,
                ThreadPoolExecutor(workers, thread_name_prefix="fastfl-numba"),
                workers,
            )
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _forget_pool() -> None:
    """After fork the pool's threads are gone in the child: start a new pool when needed."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


@intrinsic
def vptr(typingctx, addr):
    """Turn an integer address into a void pointer (for numba.carray)."""
    sig = types.voidptr(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.IntType(8).as_pointer())

    return sig, codegen


@intrinsic
def memcpy(typingctx, dst, src, nbytes):
    """Copy nbytes from address src to address dst (libc memcpy: non-temporal stores when large)."""
    sig = types.void(types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = ir.IntType(8).as_pointer()
        d, s = builder.inttoptr(args[0], ptr), builder.inttoptr(args[1], ptr)
        cgutils.raw_memcpy(builder, d, s, args[2], 1)
        return context.get_dummy_value()

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
def is_float(code):
    """Whether a dtype code is one of the four floating types."""
    return code in (F16, F32, F64, BF16)

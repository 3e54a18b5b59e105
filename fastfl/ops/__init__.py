"""The one way into the kernels: flatten, unflatten, cast, weighted sum, accumulate, mix, pack.

The backend (`native`, `numba` or `torch`) is chosen once at import (see `_select`); CUDA tensors
always go to the torch backend. Every function validates its arguments here, before any pointer
reaches a kernel, and raises `TypeError`/`ValueError` subclasses that name the bad argument.
Outputs are allocated here (or passed in with `out=`); kernels never allocate.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType

import torch
from torch import Tensor

from fastfl.dtypes import itemsize
from fastfl.errors import KernelArgumentError, KernelTypeError
from fastfl.ops import _check, _select

__all__ = [
    "accumulate_",
    "available_backends",
    "backend",
    "cast",
    "empty",
    "flatten",
    "mix_",
    "pack",
    "set_pool_limit",
    "unflatten_",
    "using",
    "weighted_sum",
]

_impl: ModuleType = _select.choose()
_torch: ModuleType = _select.load("torch")
_switch_lock = threading.Lock()
ACC_DTYPES = (torch.float32, torch.float64)
# From this size up, `empty` takes memory from the native pool / huge pages (smaller buffers are
# served warm by the C allocator's own free lists).
LARGE_BYTES = 4 << 20
UNFLATTEN_MODES = {"copy": None, "add": 1.0, "sub": -1.0}


def backend() -> str:
    """Return the name of the backend in use for CPU tensors."""
    return str(_impl.NAME)


def available_backends() -> list[str]:
    """Return the names of the backends that load on this machine."""
    names = []
    for name in _select.BACKENDS:
        with contextlib.suppress(ImportError):
            _select.load(name)
            names.append(name)
    return names


@contextlib.contextmanager
def using(name: str) -> Iterator[ModuleType]:
    """Use another backend inside a `with` block (for tests and benchmarks; not thread-local)."""
    global _impl
    module = _select.load(name)
    with _switch_lock:
        previous, _impl = _impl, module
    try:
        yield module
    finally:
        _impl = previous


def native_core() -> ModuleType | None:
    """The compiled core `fastfl._C` while the native backend serves CPU tensors, else None.

    For callers that run a whole operation in one compiled call (the serializer's flat plans);
    they validate what they pass, as this module does.
    """
    return getattr(_impl, "_C", None) if _impl.NAME == "native" else None


def native_threads() -> int:
    """The thread count the kernels use for large buffers (FASTFL_NUM_THREADS, else torch's)."""
    threads = getattr(_impl, "threads", None)
    return int(threads()) if threads is not None else torch.get_num_threads()


def _pick(device: torch.device | None) -> ModuleType:
    return _impl if device is None or device.type == "cpu" else _torch


def empty(
    shape: int | Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Return a new uninitialised tensor, like `torch.empty`, that is cheap to fill for the first time.

    On the CPU with the native backend, buffers of `LARGE_BYTES` or more come from 2 MiB-aligned
    memory advised for transparent huge pages before the first write (one page fault per 2 MiB
    instead of per 4 KiB), or, when a buffer of the same size was freed recently, from a small
    pool that reuses it warm (it only holds storage that no tensor references any more; see
    `set_pool_limit`). The tensor is an ordinary torch tensor except that its storage cannot be
    resized. Other devices, sizes and backends get `torch.empty`.

    Raises:
        TypeError: dtype is not one of the kernels' dtypes.
        ValueError: a dimension is negative.
    """
    dims = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    _check.dtype(dtype, "dtype")
    if any(d < 0 for d in dims):
        raise KernelArgumentError(f"shape {dims} has a negative dimension")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type != "cpu":
        return torch.empty(dims, dtype=dtype, device=dev)
    numel = 1
    for d in dims:
        numel *= d
    if numel * itemsize(dtype) < LARGE_BYTES:
        return torch.empty(dims, dtype=dtype)
    return _impl.empty(dims, dtype)


def set_pool_limit(nbytes: int) -> int:
    """Set how many bytes of freed large buffers the native backend keeps for reuse (0: none).

    The default is 256 MiB (or FASTFL_POOL_MB); the pool never holds memory a tensor still uses.

    Returns:
        The previous limit (0 on backends without a pool).
    """
    if not isinstance(nbytes, int) or nbytes < 0:
        raise KernelArgumentError(f"nbytes must be a non-negative int, got {nbytes!r}")
    return int(_impl.set_pool_limit(nbytes))


def flatten(
    tensors: Sequence[Tensor], *, out: Tensor | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """Copy many tensors into one flat buffer, in order, casting to the buffer's dtype.

    Args:
        tensors: contiguous tensors of any shape and supported dtype.
        out: a 1-D contiguous destination of exactly the total element count (reused across calls
            to avoid page faults); allocated if None.
        dtype: dtype of the allocated buffer (default: the first tensor's dtype); with `out`, it
            must equal out's dtype.

    Returns:
        The flat buffer.
    """
    srcs = _check.tensors(tensors, "tensors")
    total = sum(t.numel() for t in srcs)
    if out is None:
        kind = dtype or (srcs[0].dtype if srcs else torch.float32)
        device = srcs[0].device if srcs else None
        out = empty(total, dtype=kind, device=device)
    _check.tensor(out, "out")
    if dtype is not None and out.dtype != dtype:
        raise KernelTypeError(f"out has dtype {out.dtype} but dtype={dtype} was asked for")
    if out.dim() != 1 or out.numel() != total:
        raise KernelArgumentError(f"out must be 1-D with {total} elements, got shape {tuple(out.shape)}")
    device = _check.device_of({"tensors": srcs, "out": [out]})
    _pick(device).cast(srcs, _split(out, srcs))
    return out


def unflatten_(flat: Tensor, tensors: Sequence[Tensor], *, mode: str = "copy") -> None:
    """Write consecutive pieces of `flat` into `tensors`: copy, add or subtract, casting as needed.

    Raises:
        ValueError: unknown mode, or `flat` does not hold exactly the tensors' total element count.
    """
    if mode not in UNFLATTEN_MODES:
        raise KernelArgumentError(f"mode must be one of {', '.join(UNFLATTEN_MODES)}, got {mode!r}")
    dsts = _check.tensors(tensors, "tensors")
    _check.tensor(flat, "flat")
    total = sum(t.numel() for t in dsts)
    if flat.numel() != total:
        raise KernelArgumentError(f"flat has {flat.numel()} elements but the tensors hold {total}")
    if mode != "copy":
        for i, t in enumerate(dsts):
            _check.floating(t, f"tensors[{i}] (mode {mode!r})")
    device = _check.device_of({"tensors": dsts, "flat": [flat]})
    pieces = _split(flat.view(-1), dsts)
    alpha = UNFLATTEN_MODES[mode]
    if alpha is None:
        _pick(device).cast(pieces, dsts)
    else:
        _pick(device).combine(pieces, dsts, alpha)


def cast(x: Tensor, dtype: torch.dtype, *, out: Tensor | None = None) -> Tensor:
    """Convert x to `dtype` (round-to-nearest-even into half types; NaN and Inf kept)."""
    _check.tensor(x, "x")
    _check.dtype(dtype, "dtype")
    if out is None:
        out = empty(x.shape, dtype=dtype, device=x.device)
    _check.tensor(out, "out")
    if out.dtype != dtype:
        raise KernelTypeError(f"out has dtype {out.dtype} but dtype={dtype} was asked for")
    _check.same_numel(x, out, "x", "out")
    _pick(_check.device_of({"x": [x], "out": [out]})).cast([x], [out])
    return out


def weighted_sum(
    inputs: Sequence[Tensor],
    weights: Sequence[float] | Tensor,
    *,
    out: Tensor | None = None,
    acc_dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Write sum_i weights[i] * inputs[i] into `out` in one pass over memory (FedAvg).

    Args:
        inputs: K >= 1 floating tensors (fp32, fp16, bf16 or fp64) with equal element counts.
        weights: K finite numbers, used as given (normalise them first for an average).
        out: fp32 or fp64 destination, reused across calls; allocated (fp32, or fp64 when
            acc_dtype is fp64) with the first input's shape if None.
        acc_dtype: precision of the running sum, torch.float32 or torch.float64.
    """
    xs = _check.tensors(inputs, "inputs")
    if not xs:
        raise KernelArgumentError("inputs is empty; weighted_sum needs at least one tensor")
    ws = _check.weight_list(weights, len(xs))
    if acc_dtype not in ACC_DTYPES:
        raise KernelTypeError(f"acc_dtype must be torch.float32 or torch.float64, got {acc_dtype}")
    for i, x in enumerate(xs):
        _check.floating(x, f"inputs[{i}]")
        _check.same_numel(x, xs[0], f"inputs[{i}]", "inputs[0]")
    if out is None:
        out = empty(xs[0].shape, dtype=acc_dtype, device=xs[0].device)
    _check.tensor(out, "out")
    _check.floating(out, "out", ACC_DTYPES)
    _check.same_numel(out, xs[0], "out", "inputs[0]")
    device = _check.device_of({"inputs": xs, "out": [out]})
    _pick(device).weighted_sum(xs, ws, out, acc_dtype == torch.float64)
    return out


def accumulate_(acc: Tensor, x: Tensor, weight: float) -> Tensor:
    """Compute acc += weight * x in place (aggregation as each update arrives); return acc."""
    _check.tensor(acc, "acc")
    _check.tensor(x, "x")
    _check.floating(acc, "acc", ACC_DTYPES)
    _check.floating(x, "x")
    _check.same_numel(x, acc, "x", "acc")
    (w,) = _check.weight_list([weight], 1, "weight")
    _pick(_check.device_of({"acc": [acc], "x": [x]})).accumulate_(acc, x, w)
    return acc


def mix_(s: Tensor, n: Tensor, alpha: float) -> Tensor:
    """Compute s = (1 - alpha) * s + alpha * n in place (FedAsync); return s."""
    _check.tensor(s, "s")
    _check.tensor(n, "n")
    _check.floating(s, "s")
    _check.floating(n, "n")
    _check.same_numel(n, s, "n", "s")
    (a,) = _check.weight_list([alpha], 1, "alpha")
    _pick(_check.device_of({"s": [s], "n": [n]})).mix_(s, n, a)
    return s


def pack(
    tensors: Sequence[Tensor], offsets: Sequence[int], dtypes: Sequence[torch.dtype], *, out: Tensor
) -> Tensor:
    """Copy each tensor, cast to dtypes[i], into the byte buffer `out` at byte offset offsets[i].

    This is the payload half of the wire format: one pass over the bytes of all tensors.
    """
    srcs = _check.tensors(tensors, "tensors")
    _check.tensor(out, "out")
    if out.dtype != torch.uint8 or out.dim() != 1:
        raise KernelTypeError(
            f"out must be a 1-D torch.uint8 buffer, got {out.dtype} of shape {tuple(out.shape)}"
        )
    if not (len(offsets) == len(dtypes) == len(srcs)):
        raise KernelArgumentError(
            f"got {len(srcs)} tensors, {len(offsets)} offsets and {len(dtypes)} dtypes; counts must match"
        )
    dsts = []
    for i, (t, off, dt) in enumerate(zip(srcs, offsets, dtypes, strict=True)):
        size = itemsize(dt)
        end = off + t.numel() * size
        if off < 0 or end > out.numel() or off % size:
            raise KernelArgumentError(
                f"tensors[{i}] needs bytes [{off}, {end}) of out ({out.numel()} bytes), aligned to {size}"
            )
        dsts.append(out[off:end].view(dt))
    _pick(_check.device_of({"tensors": srcs, "out": [out]})).cast(srcs, dsts)
    return out


def _split(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Cut a 1-D buffer into consecutive views with the element counts of `like`."""
    sizes = [t.numel() for t in like]
    return list(flat.split(sizes)) if sizes else []

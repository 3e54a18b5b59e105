"""Weighted averaging of lists of NumPy arrays (one list per client) with fastfl's compiled kernel.

Arrays serialized with ``np.save`` (Flower's wire format for parameters) are read in place:
`npy_view` returns a read-only array over the bytes, so K results are averaged without first
copying each into a new array.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from collections.abc import Sequence
from numbers import Real

import numpy as np
import torch

from fastfl import ops
from fastfl.errors import UpdateFormatError

__all__ = ["aggregate_ndarrays", "npy_view"]

_KERNEL_DTYPES = (np.float16, np.float32, np.float64)


def npy_view(blob: bytes | bytearray | memoryview) -> np.ndarray:
    """The array stored in ``np.save`` bytes, as a read-only view of `blob` (a copy only when it must).

    Object arrays are refused (as ``np.load(allow_pickle=False)`` refuses them); Fortran-ordered
    or structured arrays are loaded with ``np.load``.
    """
    view = memoryview(blob)
    size_bytes = 2 if view[6] == 1 else 4  # format version 1.0: uint16 header length, else uint32
    start = 8 + size_bytes
    length = int.from_bytes(view[8:start], "little")
    shape, fortran, dtype = _header(bytes(view[: start + length]))
    if dtype.hasobject:
        raise UpdateFormatError("the array holds Python objects; only numeric arrays can be aggregated")
    if fortran or dtype.fields is not None:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    count = math.prod(shape)
    return np.frombuffer(blob, dtype=dtype, count=count, offset=start + length).reshape(shape)


@functools.lru_cache(maxsize=4096)
def _header(head: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Parse an ``.npy`` header (cached: every client's copy of a layer has the same header)."""
    stream = io.BytesIO(head)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    return np.lib.format.read_array_header_2_0(stream)


def _weights(weights: Sequence[float], count: int) -> list[float]:
    ws = [float(w) for w in weights]
    if len(ws) != count:
        raise UpdateFormatError(f"got {count} results but {len(ws)} weights")
    if any(isinstance(w, bool) or not isinstance(w, Real) for w in weights):
        raise UpdateFormatError("weights must be numbers (e.g. num_examples)")
    if not all(math.isfinite(w) and w >= 0 for w in ws) or sum(ws) <= 0:
        raise UpdateFormatError(f"weights must be finite, >= 0 and not all 0; got {ws}")
    total = sum(ws)
    return [w / total for w in ws]


def _tensor(a: np.ndarray) -> torch.Tensor:
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    with warnings.catch_warnings():  # read-only views: the kernel only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def aggregate_ndarrays(
    results: Sequence[Sequence[np.ndarray]],
    weights: Sequence[float],
    out: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Weighted mean of K clients' array lists, layer by layer (Flower's FedAvg arithmetic).

    Float layers (fp16/fp32/fp64) are averaged in one compiled pass per layer (fp32
    accumulation, fp64 for fp64 layers) and returned in their own dtype. Other numeric layers
    are averaged in fp64 and returned as fp64, as Flower's ``aggregate`` does.

    Args:
        results: K lists of arrays with equal lengths, shapes and dtypes.
        weights: K weights (e.g. ``num_examples``), >= 0 with a positive sum.
        out: arrays to write the means into (reused across rounds); None allocates them.

    Returns:
        The list of averaged arrays (`out` when given).

    Raises:
        UpdateFormatError: no results, mismatched layers, bad weights or a mismatched `out`.
    """
    if not results:
        raise UpdateFormatError("results is empty; give at least one result to aggregate")
    ws = _weights(weights, len(results))
    layers = len(results[0])
    for i, r in enumerate(results):
        if len(r) != layers:
            raise UpdateFormatError(f"result {i} has {len(r)} arrays, result 0 has {layers}")
    if out is not None and len(out) != layers:
        raise UpdateFormatError(f"out has {len(out)} arrays, the results have {layers}")
    merged: list[np.ndarray] = []
    for j in range(layers):
        arrays = [np.asarray(r[j]) for r in results]
        ref = arrays[0]
        for i, a in enumerate(arrays[1:], start=1):
            if a.shape != ref.shape or a.dtype != ref.dtype:
                raise UpdateFormatError(
                    f"result {i} layer {j} is {a.shape} {a.dtype}, result 0 has {ref.shape} {ref.dtype}"
                )
        float_layer = ref.dtype.type in _KERNEL_DTYPES
        dtype = ref.dtype if float_layer else np.dtype(np.float64)
        target = np.empty(ref.shape, dtype=dtype) if out is None else out[j]
        if target.shape != ref.shape or target.dtype != dtype:
            raise UpdateFormatError(
                f"out[{j}] is {target.shape} {target.dtype}, expected {ref.shape} {dtype}"
            )
        if float_layer:
            xs = [_tensor(a) for a in arrays]
            acc = torch.float64 if dtype == np.float64 else torch.float32
            if dtype in (np.float32, np.float64) and target.flags.c_contiguous and target.flags.writeable:
                ops.weighted_sum(xs, ws, out=torch.from_numpy(target), acc_dtype=acc)
            else:
                target[...] = ops.weighted_sum(xs, ws).numpy().astype(dtype)
        else:
            target[...] = sum(w * a.astype(np.float64) for w, a in zip(ws, arrays, strict=True))
        merged.append(target)
    return merged

"""Byte layouts of the two codecs' blobs (1-D uint8 tensors), little-endian.

qsgd (codec 1), 16-byte header then the packed codes:
    u8 version (1) | u8 bits per code | u16 s | 4 zero bytes | f64 norm | ceil(n*bits/8) code bytes
sparse (codec 2: top-k, random-k, DGC), 16-byte header, indices, values:
    u8 version (1) | u8 index dtype code (int32 2 / int64 3) | u8 value dtype code | 5 zero bytes |
    u64 k | k indices | zero pad to a multiple of 8 | k values
The element count n and the tensor's shape and dtype travel in the wire's tensor table, not here.
"""

from __future__ import annotations

import struct

import torch
from torch import Tensor

from fastfl import ops
from fastfl.dtypes import CODES, FLOAT_DTYPES, torch_dtype
from fastfl.errors import WireFormatError
from fastfl.ops import compress as kc

VERSION = 1
HEADER = 16
_QSGD = struct.Struct("<BBHxxxxd")
_SPARSE = struct.Struct("<BBBxxxxxQ")
INDEX_DTYPES = (torch.int32, torch.int64)


def _header(blob: Tensor, layout: struct.Struct, codec: str) -> tuple:
    if not isinstance(blob, Tensor) or blob.dtype != torch.uint8 or blob.dim() != 1:
        raise WireFormatError(f"a {codec} blob must be a 1-D uint8 tensor, got {_describe(blob)}")
    if blob.numel() < HEADER:
        raise WireFormatError(f"a {codec} blob has at least {HEADER} bytes, got {blob.numel()}")
    fields = layout.unpack(bytes(blob[:HEADER].cpu().numpy()))
    if fields[0] != VERSION:
        raise WireFormatError(
            f"{codec} blob version {fields[0]} is not supported (this fastfl reads {VERSION})"
        )
    return fields


def _describe(x: object) -> str:
    return f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__


def _piece(blob: Tensor, start: int, count: int, dtype: torch.dtype) -> Tensor:
    """Count elements of dtype at byte `start` of blob (copied first if that byte is misaligned)."""
    size = dtype.itemsize
    part = blob[start : start + count * size]
    if part.data_ptr() % size:
        part = part.clone()
    return part.view(dtype)


def qsgd_blob(x: Tensor, s: int, norm: float, seed: int) -> Tensor:
    """Encode a flat float32/float64 x as a qsgd blob."""
    nbytes = kc.qsgd_nbytes(x.numel(), s)
    blob = torch.empty(HEADER + nbytes, dtype=torch.uint8, device=x.device)
    blob[:HEADER] = torch.frombuffer(
        bytearray(_QSGD.pack(VERSION, kc.qsgd_bits(s), s, norm)), dtype=torch.uint8
    )
    kc.qsgd_quantize(x, s=s, norm=norm, seed=seed, out=blob[HEADER:])
    return blob


def qsgd_unblob(blob: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Decode a qsgd blob into a tensor of `shape` and floating `dtype`."""
    _, bits, s, norm = _header(blob, _QSGD, "qsgd")
    out_dtype = _float_dtype(dtype, "qsgd")
    n = _numel(shape)
    if not 1 <= s <= kc.MAX_LEVELS or bits != kc.qsgd_bits(s) or not norm >= 0.0 or norm == float("inf"):
        raise WireFormatError(f"qsgd blob header is corrupt: s={s}, bits={bits}, norm={norm}")
    expected = HEADER + kc.qsgd_nbytes(n, s)
    if blob.numel() != expected:
        raise WireFormatError(f"qsgd blob for {n} elements at s={s} has {expected} bytes, got {blob.numel()}")
    work = out_dtype if out_dtype in kc.BUFFER_DTYPES else torch.float32
    out = torch.empty(n, dtype=work, device=blob.device)
    try:
        kc.qsgd_dequantize(blob[HEADER:], s=s, norm=norm, out=out)
    except ValueError as err:
        raise WireFormatError(f"qsgd blob: {err}") from err
    return _finish(out, shape, out_dtype)


def sparse_blob(n: int, idx: Tensor, vals: Tensor, value_dtype: torch.dtype) -> Tensor:
    """Encode k (index, value) pairs of a length-n vector as a sparse blob (int32 indices if n fits)."""
    k = idx.numel()
    index_dtype = torch.int32 if n <= 2**31 - 1 else torch.int64
    isize = 4 if index_dtype == torch.int32 else 8
    vstart = HEADER + _pad8(k * isize)
    vsize = value_dtype.itemsize
    blob = torch.empty(vstart + k * vsize, dtype=torch.uint8, device=idx.device)
    blob[HEADER + k * isize : vstart] = 0  # the pad before the values
    header = _SPARSE.pack(VERSION, int(CODES[index_dtype]), int(CODES[value_dtype]), k)
    blob[:HEADER] = torch.frombuffer(bytearray(header), dtype=torch.uint8)
    if k:
        ops.cast(idx, index_dtype, out=blob[HEADER : HEADER + k * isize].view(index_dtype))
        ops.cast(vals, value_dtype, out=blob[vstart:].view(value_dtype))
    return blob


def sparse_unblob(blob: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Decode a sparse blob into a dense tensor of `shape` and floating `dtype` (zeros elsewhere)."""
    _, icode, vcode, k = _header(blob, _SPARSE, "sparse")
    out_dtype = _float_dtype(dtype, "sparse")
    n = _numel(shape)
    try:
        index_dtype, value_dtype = torch_dtype(icode), torch_dtype(vcode)
    except (TypeError, ValueError, KeyError):
        raise WireFormatError(f"sparse blob names unknown dtype codes {icode}, {vcode}") from None
    if index_dtype not in INDEX_DTYPES or value_dtype not in FLOAT_DTYPES:
        raise WireFormatError(f"sparse blob has index dtype {index_dtype} and value dtype {value_dtype}")
    isize = 4 if index_dtype == torch.int32 else 8
    vsize = value_dtype.itemsize
    expected = HEADER + _pad8(k * isize) + k * vsize
    if k > n or blob.numel() != expected:
        raise WireFormatError(
            f"sparse blob of k={k} for {n} elements has {expected} bytes, got {blob.numel()}"
        )
    work = out_dtype if out_dtype in kc.BUFFER_DTYPES else torch.float32
    out = torch.zeros(n, dtype=work, device=blob.device)
    if k:
        idx = _piece(blob, HEADER, k, index_dtype)
        idx = idx if index_dtype == torch.int64 else ops.cast(idx, torch.int64)
        vals = _piece(blob, HEADER + _pad8(k * isize), k, value_dtype)
        vals = vals if value_dtype == work else ops.cast(vals, work)
        try:
            kc.scatter_(out, idx, vals)
        except ValueError as err:
            raise WireFormatError(f"sparse blob: {err}") from err
    return _finish(out, shape, out_dtype)


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        if int(d) < 0:
            raise WireFormatError(f"shape {tuple(shape)} has a negative dimension")
        n *= int(d)
    return n


def _float_dtype(dtype: torch.dtype, codec: str) -> torch.dtype:
    if dtype not in FLOAT_DTYPES:
        raise WireFormatError(f"the {codec} codec decodes floating tensors only, got dtype {dtype}")
    return dtype


def _finish(out: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    if out.dtype != dtype:
        out = ops.cast(out, dtype)
    return out.view(tuple(int(d) for d in shape))

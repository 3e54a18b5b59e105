"""Read received packages: cut the tensors of a body out as views, checking its table first.

The receive side of the wire format defined in wire.py (docs/wire.md). Every size read from the
table is checked against the header before a view is made; nothing here allocates a body.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from fastfl import ops
from fastfl.core.communicator.wire import (
    _BF16,
    _BY_CODE,
    _FLOAT_CODES,
    _ITEMSIZE,
    _NCODES,
    _NP_VIEW,
    HEADER_BYTES,
    MAX_DIM,
    MAX_NDIM,
    Header,
    _table_struct,
    align,
    contiguous_strides,
)
from fastfl.errors import WireFormatError

__all__ = ["unpack", "unpack_counted", "unpack_inline", "unpack_trusted"]


def unpack(body: Tensor, head: Header, *, restore_dtypes: bool = True) -> list[Tensor]:
    """Return the tensors of a received body as views into it (casts only where the wire dtype differs).

    Args:
        body: 1-D uint8 tensor of exactly `head.body_bytes` bytes, starting 8-byte aligned.
        head: the decoded header.
        restore_dtypes: give tensors sent in a narrower wire dtype back in their original dtype.

    Raises:
        WireFormatError: the table contradicts the header or itself.
    """
    return unpack_counted(body, head, restore_dtypes=restore_dtypes)[0]


def unpack_counted(
    body: Tensor, head: Header, *, restore_dtypes: bool = True, base: int = 0, host: np.ndarray | None = None
) -> tuple[list[Tensor], int]:
    """Like `unpack`, and also return the tensor bytes as they travelled (numel times wire item size).

    With `base`, the body is bytes [base, base + head.body_bytes) of `body` (a whole frame, say):
    views are then cut straight from the frame, saving the slicing on the small-message path.
    `host`, if given, is a numpy view of the same bytes (on the CPU), read instead of `body`.
    """
    if body.dtype != torch.uint8 or body.dim() != 1:
        raise WireFormatError(
            f"body must be a 1-D uint8 tensor, got {body.dtype} of shape {tuple(body.shape)}"
        )
    if base % 8 or body.numel() < base + head.body_bytes or (not base and body.numel() != head.body_bytes):
        raise WireFormatError(
            f"body must be {head.body_bytes} bytes from byte {base}, got {body.numel()} bytes"
        )
    return unpack_trusted(body, head, restore_dtypes=restore_dtypes, base=base, host=host)


def unpack_trusted(
    body: Tensor, head: Header, *, restore_dtypes: bool = True, base: int = 0, host: np.ndarray | None = None
) -> tuple[list[Tensor], int]:
    """`unpack_counted` for a buffer the caller allocated to the header's sizes (no buffer checks).

    The table is still checked in full against the header.
    """
    if not head.count:
        return [], 0
    start = base + align(head.payload_bytes, 8)
    if host is None:
        host, start = _host_bytes(body, start, base + head.body_bytes), 0
    elif body.device.type == "cpu":
        table = host[start : start + head.table_bytes].tobytes()
        entries = _parse_small_table(table, head.count, head.dims_total, head.payload_bytes)
        return _views_of_host(host, base, entries, restore_dtypes)
    entries = _parse_table(host, start, head)
    out = []
    typed: dict[int, tuple[Tensor, int]] = {}
    numel = body.numel()
    nbytes = 0
    for code, want, shape, off in entries:
        size = _ITEMSIZE[code]
        found = typed.get(code)
        if found is None:
            whole = body if numel % size == 0 else body[: numel // size * size]
            view = whole.view(_BY_CODE[code])
            found = typed[code] = (view, view.storage_offset())
        t = found[0].as_strided(shape, contiguous_strides(shape), found[1] + (base + off) // size)
        if restore_dtypes and want != code:
            t = ops.cast(t, _BY_CODE[want])
        out.append(t)
        nbytes += math.prod(shape) * size
    return out, nbytes


def unpack_inline(host: np.ndarray, head: Header, *, restore_dtypes: bool = True) -> tuple[list[Tensor], int]:
    """`unpack_counted` of an inline body in a received CPU frame (`host`: the frame's numpy array).

    The frame is the buffer the caller received into, of FRAME_BYTES bytes, and `decode_header`
    has checked that the body fits in it. The table is checked in full against the header (once
    per distinct table and header: see `_inline_entries`).
    """
    if not head.count:
        return [], 0
    start = HEADER_BYTES + ((head.payload_bytes + 7) & ~7)
    entries = _inline_entries(host[start : start + head.table_bytes].tobytes(), head)
    return _views_of_host(host, HEADER_BYTES, entries, restore_dtypes)


@functools.lru_cache(maxsize=64)
def _inline_entries(table: bytes, head: Header) -> list[tuple[int, int, tuple[int, ...], int]]:
    """`_parse_table` of an inline table, remembered (errors are never cached)."""
    return _parse_table(table, 0, head)


def _views_of_host(
    host: np.ndarray, base: int, entries: list[tuple[int, int, tuple[int, ...], int]], restore_dtypes: bool
) -> tuple[list[Tensor], int]:
    """Cut the tensors out of a CPU buffer's numpy view, as views of it.

    One numpy slice and one `torch.from_numpy` per tensor: about half the cost of a torch dtype
    view plus `as_strided` (this is the small-message path).
    """
    out = []
    nbytes = 0
    for code, want, shape, off in entries:
        size = _ITEMSIZE[code]
        stop = base + off + math.prod(shape) * size
        if len(shape) == 1 and shape[0]:
            # the buffer protocol keeps `host` referenced, as a numpy view would, and costs less
            t = torch.frombuffer(host, dtype=_BY_CODE[code], count=shape[0], offset=base + off)
        else:
            t = torch.from_numpy(host[base + off : stop].view(_NP_VIEW[code]).reshape(shape))
            if code == _BF16:
                t = t.view(torch.bfloat16)  # numpy has no bfloat16: same-size integers, then a torch view
        if restore_dtypes and want != code:
            t = ops.cast(t, _BY_CODE[want])
        out.append(t)
        nbytes += stop - base - off
    return out, nbytes


def _host_bytes(buf: Tensor, start: int, stop: int) -> bytes:
    """Bytes [start, stop) of a uint8 tensor, copied to the host."""
    if buf.device.type == "cpu":
        return buf.numpy()[start:stop].tobytes()
    return buf[start:stop].cpu().numpy().tobytes()


@functools.lru_cache(maxsize=64)
def _parse_small_table(
    table: bytes, count: int, dims_total: int, payload_bytes: int
) -> list[tuple[int, int, tuple[int, ...], int]]:
    """`_parse_table` of an inline table (at most 8 KiB), remembered.

    A peer sends the same shapes message after message, and the result depends only on these
    arguments; the checks still run for every new table, and errors are never cached.
    """
    head = Header(0, 0, 0, count, payload_bytes, len(table), 0, dims_total, True)
    return _parse_table(table, 0, head)


def _parse_table(
    buf: bytes | np.ndarray, start: int, head: Header
) -> list[tuple[int, int, tuple[int, ...], int]]:
    """Check the table at byte `start` of `buf` against the header.

    Returns:
        (wire code, code, shape, offset) per tensor.
    """
    n = head.count
    values = _table_struct(n, head.dims_total).unpack_from(buf, start)
    wire, orig, ndims = values[:n], values[n : 2 * n], values[2 * n : 3 * n]
    offsets, dims = values[3 * n : 4 * n], values[4 * n :]
    if sum(ndims) != head.dims_total:
        raise WireFormatError(f"table ndims sum to {sum(ndims)}; the header says {head.dims_total}")
    entries = []
    pos = end = 0
    for i in range(n):
        code, want, k = wire[i], orig[i], ndims[i]
        if code >= _NCODES or want >= _NCODES:
            raise WireFormatError(f"unknown dtype code in the table (known codes are 0..{_NCODES - 1})")
        if code != want and (code not in _FLOAT_CODES or want not in _FLOAT_CODES):
            raise WireFormatError(
                f"wire dtype code {code} differs from dtype code {want}; only floats may be cast"
            )
        shape = dims[pos : pos + k]
        pos += k
        if k > MAX_NDIM or (shape and (min(shape) < 0 or math.prod(max(d, 1) for d in shape) > MAX_DIM)):
            raise WireFormatError(
                f"table holds a shape {shape} with a negative dimension or beyond {MAX_DIM}"
            )
        size = _ITEMSIZE[code]
        end = (end + size - 1) // size * size
        if offsets[i] != end:
            raise WireFormatError(
                f"tensor {i} offset {offsets[i]} does not match the canonical layout ({end})"
            )
        entries.append((code, want, shape, end))
        end += math.prod(shape) * size
    if end != head.payload_bytes:
        raise WireFormatError(
            f"tensor offsets do not match the canonical layout ({end} != {head.payload_bytes} bytes)"
        )
    return entries

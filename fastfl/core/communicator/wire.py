"""fastfl's wire format: the 64-byte header, the tensor table, and unpacking a body into views.

A package travels as one fixed-size frame (the header, plus the body when it fits) and, when the
body does not fit, one more transfer holding exactly the body. The body is the payload (tensors,
each aligned to its item size) followed by the tensor table. docs/wire.md specifies every byte;
tests/core/communicator/test_wire_golden.py pins them.

Everything here is pure: no network, no global state. Every size read from the wire is checked
against the header and the configured limit before anything is allocated.
"""

from __future__ import annotations

import functools
import math
import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from fastfl import ops
from fastfl.dtypes import TORCH_DTYPES, DType
from fastfl.errors import WireFormatError

MAGIC = b"FFLW"
VERSION = 1
HEADER = struct.Struct("<4sHHiiiIQQQI8xI")
HEADER_BYTES = HEADER.size  # 64
CRC_AT = HEADER_BYTES - 4
_CRC = struct.Struct("<I")
FRAME_BYTES = 8192
INLINE_CAPACITY = FRAME_BYTES - HEADER_BYTES
FLAG_INLINE = 1
KNOWN_FLAGS = FLAG_INLINE
MAX_NDIM = 64
MAX_DIM = 1 << 48
DEFAULT_MAX_MESSAGE_BYTES = 1 << 32

ITEMSIZE: dict[torch.dtype, int] = {
    dt: torch.empty((), dtype=dt).element_size() for dt in TORCH_DTYPES.values()
}
_BY_CODE: list[torch.dtype] = [TORCH_DTYPES[DType(c)] for c in range(len(DType))]
_ITEMSIZE: list[int] = [ITEMSIZE[dt] for dt in _BY_CODE]
_NCODES = len(DType)
_BF16 = int(DType.BFLOAT16)
_NP_VIEW: list[type] = [
    np.dtype(str(dt).removeprefix("torch.")).type if dt != torch.bfloat16 else np.int16 for dt in _BY_CODE
]
_FLOAT_CODES = frozenset(int(c) for c in (DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64))


class Header(NamedTuple):
    """The decoded 64-byte header of a fastfl package (a named tuple: cheap to build per message)."""

    message_code: int
    sender: int
    receiver: int
    count: int
    payload_bytes: int
    table_bytes: int
    body_bytes: int
    dims_total: int
    inline: bool


def align(n: int, to: int) -> int:
    """Round n up to a multiple of `to`."""
    return (n + to - 1) // to * to


def table_bytes(count: int, dims_total: int) -> int:
    """Size of the tensor table for `count` tensors with `dims_total` dimensions in all."""
    return align(3 * count, 8) + 8 * count + 8 * dims_total


def encode_header(head: Header) -> bytes:
    """Return the 64 header bytes, the CRC-32 of the first 60 included."""
    fields = (
        MAGIC,
        VERSION,
        FLAG_INLINE if head.inline else 0,
        head.message_code,
        head.sender,
        head.receiver,
        head.count,
        head.payload_bytes,
        head.table_bytes,
        head.body_bytes,
        head.dims_total,
    )
    raw = HEADER.pack(*fields, 0)[:CRC_AT]
    return raw + _CRC.pack(zlib.crc32(raw))


def decode_header(
    raw: bytes | memoryview | np.ndarray, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> Header:
    """Check and decode 64 header bytes; every size is validated before the caller allocates.

    `raw` may be any contiguous buffer of at least 64 bytes (a received frame's numpy view, say):
    the header is read in place, without a copy.

    Raises:
        WireFormatError: short input, wrong magic, version, checksum or flags, inconsistent sizes,
            or a body larger than `max_message_bytes`.
    """
    if len(raw) < HEADER_BYTES:
        raise WireFormatError(f"header is {len(raw)} bytes; a fastfl header has {HEADER_BYTES}")
    magic, version, flags, code, sender, receiver, count, payload, table, body, dims, crc = (
        HEADER.unpack_from(raw)
    )
    if magic != MAGIC:
        raise WireFormatError(
            f"bad magic {magic!r} (expected {MAGIC!r}): the peer does not speak fastfl's wire format "
            "(a FedLab peer needs wire='fedlab')"
        )
    if version != VERSION:
        raise WireFormatError(
            f"wire format version {version} is not supported (this fastfl speaks {VERSION})"
        )
    if crc != zlib.crc32(raw[:CRC_AT]):
        raise WireFormatError("header checksum mismatch: the header was corrupted in transit")
    if flags & ~KNOWN_FLAGS:
        raise WireFormatError(f"unknown header flags {flags:#x}")
    _check_sizes(count, payload, table, body, dims, max_message_bytes)
    inline = bool(flags & FLAG_INLINE)
    if inline and body > INLINE_CAPACITY:
        raise WireFormatError(f"inline body of {body} bytes exceeds the frame's {INLINE_CAPACITY} bytes")
    return Header(code, sender, receiver, count, payload, table, body, dims, inline)


@functools.lru_cache(maxsize=64)
def decode_header_bytes(raw: bytes, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Header:
    """`decode_header` of exactly 64 header bytes, remembered.

    A peer sends the same header message after message; the result depends only on the arguments,
    every new header is still checked in full, and errors are never cached.
    """
    return decode_header(raw, max_message_bytes=max_message_bytes)


def _check_sizes(count: int, payload: int, table: int, body: int, dims: int, limit: int) -> None:
    if body > limit:
        raise WireFormatError(
            f"body of {body} bytes exceeds max_message_bytes={limit}; raise the limit on both sides "
            "if such packages are expected"
        )
    if dims > MAX_NDIM * count:
        raise WireFormatError(f"{dims} dimensions for {count} tensors exceeds {MAX_NDIM} per tensor")
    if table != table_bytes(count, dims):
        raise WireFormatError(f"table of {table} bytes does not fit {count} tensors with {dims} dimensions")
    if body != align(payload, 8) + table:
        raise WireFormatError(f"body of {body} bytes != payload {payload} (aligned to 8) + table {table}")


def layout(dtypes: Sequence[torch.dtype], numels: Sequence[int], start: int = 0) -> tuple[list[int], int]:
    """Return each tensor's byte offset (aligned to its item size) and the end of the payload."""
    offsets = []
    end = start
    for dt, n in zip(dtypes, numels, strict=True):
        size = ITEMSIZE[dt]
        end = (end + size - 1) // size * size
        offsets.append(end)
        end += n * size
    return offsets, end


@functools.lru_cache(maxsize=256)
def _table_struct(count: int, dims_total: int) -> struct.Struct:
    pad = align(3 * count, 8) - 3 * count
    return struct.Struct(f"<{3 * count}B{pad}x{count}q{dims_total}q")


def encode_table(
    wire_codes: Sequence[int], codes: Sequence[int], shapes: Sequence[Sequence[int]], offsets: Sequence[int]
) -> bytes:
    """Return the tensor table: wire dtype codes, original codes, ndims, padding, offsets, all dims."""
    dims = [d for shape in shapes for d in shape]
    return _table_struct(len(shapes), len(dims)).pack(
        *wire_codes, *codes, *(len(s) for s in shapes), *offsets, *dims
    )


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


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Strides (in elements) of a contiguous tensor of this shape."""
    if len(shape) < 2:
        return (1,) * len(shape)
    strides = [1] * len(shape)
    acc = 1
    for i in range(len(shape) - 1, 0, -1):
        acc *= max(shape[i], 1)
        strides[i - 1] = acc
    return tuple(strides)

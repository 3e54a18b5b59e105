"""fastfl's wire format: the 64-byte header, the tensor table and the body layout (reader.py unpacks).

A package travels as one fixed-size frame (the header, plus the body when it fits) and, when the
body does not fit, one more transfer holding exactly the body. The body is the payload (tensors,
each aligned to its item size) followed by the tensor table. docs/wire.md specifies every byte;
tests/core/communicator/test_wire_golden.py pins them.

Everything here is pure: no network, no global state. Every size read from the wire is checked
against the header and the configured limit before anything is allocated.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from fastfl.core.communicator.meta import check_meta_size
from fastfl.dtypes import TORCH_DTYPES, DType
from fastfl.errors import WireFormatError

MAGIC = b"FFLW"
VERSION = 1
HEADER = struct.Struct("<4sHHiiiIQQQIIII")
HEADER_BYTES = HEADER.size  # 64
CRC_AT = HEADER_BYTES - 4
_CRC = struct.Struct("<I")
FRAME_BYTES = 8192
INLINE_CAPACITY = FRAME_BYTES - HEADER_BYTES
FLAG_INLINE = 1
FLAG_META = 2
KNOWN_FLAGS = FLAG_INLINE | FLAG_META
MAX_NDIM = 64
MAX_DIM = 1 << 48
DEFAULT_MAX_MESSAGE_BYTES = 1 << 32
DEFAULT_MAX_TENSORS = 1 << 16

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
    meta_bytes: int = 0


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
    flags = fields[2] | (FLAG_META if head.meta_bytes else 0)
    raw = HEADER.pack(*fields[:2], flags, *fields[3:], head.meta_bytes, 0, 0)[:CRC_AT]
    return raw + _CRC.pack(zlib.crc32(raw))


def decode_header(
    raw: bytes | memoryview | np.ndarray,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_tensors: int = DEFAULT_MAX_TENSORS,
) -> Header:
    """Check and decode 64 header bytes; every size is validated before the caller allocates.

    `raw` may be any contiguous buffer of at least 64 bytes (a received frame's numpy view, say):
    the header is read in place, without a copy.

    Raises:
        WireFormatError: short input, wrong magic, version, checksum or flags, inconsistent sizes,
            a body larger than `max_message_bytes`, or more than `max_tensors` tensors.
    """
    if len(raw) < HEADER_BYTES:
        raise WireFormatError(f"header is {len(raw)} bytes; a fastfl header has {HEADER_BYTES}")
    magic, version, flags, code, sender, receiver, count, payload, table, body, dims, meta, reserved, crc = (
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
    if reserved:
        raise WireFormatError(f"reserved header bytes 56..59 must be zero, got {reserved:#x}")
    if count > max_tensors:
        raise WireFormatError(
            f"package of {count} tensors exceeds max_tensors={max_tensors}; raise the limit on the "
            "receiver if such packages are expected"
        )
    check_meta_size(meta, bool(flags & FLAG_META))
    _check_sizes(count, payload, table, body, dims, meta, max_message_bytes)
    inline = bool(flags & FLAG_INLINE)
    if inline and body > INLINE_CAPACITY:
        raise WireFormatError(f"inline body of {body} bytes exceeds the frame's {INLINE_CAPACITY} bytes")
    return Header(code, sender, receiver, count, payload, table, body, dims, inline, meta)


@functools.lru_cache(maxsize=64)
def decode_header_bytes(
    raw: bytes, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, max_tensors: int = DEFAULT_MAX_TENSORS
) -> Header:
    """`decode_header` of exactly 64 header bytes, remembered.

    A peer sends the same header message after message; the result depends only on the arguments,
    every new header is still checked in full, and errors are never cached.
    """
    return decode_header(raw, max_message_bytes=max_message_bytes, max_tensors=max_tensors)


def _check_sizes(count: int, payload: int, table: int, body: int, dims: int, meta: int, limit: int) -> None:
    if body > limit:
        raise WireFormatError(
            f"body of {body} bytes exceeds max_message_bytes={limit}; raise the limit on both sides "
            "if such packages are expected"
        )
    if dims > MAX_NDIM * count:
        raise WireFormatError(f"{dims} dimensions for {count} tensors exceeds {MAX_NDIM} per tensor")
    if table != table_bytes(count, dims):
        raise WireFormatError(f"table of {table} bytes does not fit {count} tensors with {dims} dimensions")
    if body != align(payload, 8) + table + meta:
        raise WireFormatError(
            f"body of {body} bytes != payload {payload} (aligned to 8) + table {table} + meta {meta}"
        )


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

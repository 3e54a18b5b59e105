"""fastfl's wire format, described once: the 64-byte header, the tensor table and the body layout.

A package travels as one fixed-size frame (the header, plus the body when it fits) and, when the
body does not fit, one more transfer holding exactly the body. The body is the payload (tensors,
each aligned to its item size; codec blobs to 8 bytes), the tensor table, and an optional metadata
section (meta.py). docs/wire.md specifies every byte; tests/core/communicator/test_wire_golden.py
pins them. reader.py receives packages, package.py builds them.

Everything here is pure: no network, no global state. Every size read from the wire is checked
against the header and the configured limits before anything is allocated.
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

from fastfl.core.communicator.meta import check_meta_size
from fastfl.dtypes import TORCH_DTYPES, DType
from fastfl.errors import WireFormatError

MAGIC = b"FFLW"
VERSION = 1
HEADER = struct.Struct("<4sHHiiiIQQQIIII")
HEADER_BYTES = HEADER.size  # 64
CRC_AT = HEADER_BYTES - 4
FRAME_BYTES = 8192
INLINE_CAPACITY = FRAME_BYTES - HEADER_BYTES
FLAG_INLINE = 1  # the body follows the header inside the frame
FLAG_META = 2  # the body ends with a metadata section of `meta_bytes` bytes
FLAG_CODECS = 4  # the table has the codec and blob-size columns
KNOWN_FLAGS = FLAG_INLINE | FLAG_META | FLAG_CODECS
MAX_NDIM = 64
MAX_DIM = 1 << 48
BLOB_ALIGN = 8
DEFAULT_MAX_MESSAGE_BYTES = 1 << 32
DEFAULT_MAX_TENSORS = 1 << 16

NUM_CODES = len(DType)
DTYPE_BY_CODE: tuple[torch.dtype, ...] = tuple(TORCH_DTYPES[DType(c)] for c in range(NUM_CODES))
ITEMSIZE: dict[torch.dtype, int] = {dt: torch.empty((), dtype=dt).element_size() for dt in DTYPE_BY_CODE}
ITEMSIZE_BY_CODE: tuple[int, ...] = tuple(ITEMSIZE[dt] for dt in DTYPE_BY_CODE)
NUMPY_BY_CODE: tuple[type, ...] = tuple(  # numpy has no bfloat16: same-size integers, then a torch view
    np.dtype(str(dt).removeprefix("torch.")).type if dt != torch.bfloat16 else np.int16
    for dt in DTYPE_BY_CODE
)
FLOAT_CODES = frozenset(int(c) for c in (DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64))
BYTE_CODE = int(DType.UINT8)
_CRC = struct.Struct("<I")


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
    codecs: bool = False

    @property
    def table_at(self) -> int:
        """Where the table starts in the body."""
        return align(self.payload_bytes, 8)

    @property
    def meta_at(self) -> int:
        """Where the metadata section starts in the body."""
        return align(self.payload_bytes, 8) + self.table_bytes


class Entry(NamedTuple):
    """One tensor of a checked table.

    Attributes:
        code: dtype code of the bytes on the wire (uint8 for a codec blob).
        dtype_code: dtype code the receiver hands out (the sender's dtype).
        shape: the shape handed out.
        offset: byte offset in the payload.
        nbytes: bytes on the wire.
        codec: 0 for raw bytes, else the codec that encoded the blob (codecs.py).
    """

    code: int
    dtype_code: int
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    codec: int = 0


def align(n: int, to: int) -> int:
    """Round n up to a multiple of `to`."""
    return (n + to - 1) // to * to


def table_bytes(count: int, dims_total: int, codecs: bool = False) -> int:
    """Size of the tensor table for `count` tensors with `dims_total` dimensions in all."""
    if codecs:
        return align(4 * count, 8) + 16 * count + 8 * dims_total
    return align(3 * count, 8) + 8 * count + 8 * dims_total


def encode_header(head: Header) -> bytes:
    """Return the 64 header bytes, the CRC-32 of the first 60 included."""
    flags = (
        (FLAG_INLINE if head.inline else 0)
        | (FLAG_META if head.meta_bytes else 0)
        | (FLAG_CODECS if head.codecs else 0)
    )
    raw = HEADER.pack(
        MAGIC,
        VERSION,
        flags,
        head.message_code,
        head.sender,
        head.receiver,
        head.count,
        head.payload_bytes,
        head.table_bytes,
        head.body_bytes,
        head.dims_total,
        head.meta_bytes,
        0,
        0,
    )[:CRC_AT]
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
    codecs = bool(flags & FLAG_CODECS)
    _check_sizes(count, payload, table, body, dims, meta, codecs, max_message_bytes)
    inline = bool(flags & FLAG_INLINE)
    if inline and body > INLINE_CAPACITY:
        raise WireFormatError(f"inline body of {body} bytes exceeds the frame's {INLINE_CAPACITY} bytes")
    return Header(code, sender, receiver, count, payload, table, body, dims, inline, meta, codecs)


@functools.lru_cache(maxsize=64)
def decode_header_bytes(
    raw: bytes, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, max_tensors: int = DEFAULT_MAX_TENSORS
) -> Header:
    """`decode_header` of exactly 64 header bytes, remembered.

    A peer sends the same header message after message; the result depends only on the arguments,
    every new header is still checked in full, and errors are never cached.
    """
    return decode_header(raw, max_message_bytes=max_message_bytes, max_tensors=max_tensors)


def _check_sizes(
    count: int, payload: int, table: int, body: int, dims: int, meta: int, codecs: bool, limit: int
) -> None:
    if body > limit:
        raise WireFormatError(
            f"body of {body} bytes exceeds max_message_bytes={limit}; raise the limit on both sides "
            "if such packages are expected"
        )
    if dims > MAX_NDIM * count:
        raise WireFormatError(f"{dims} dimensions for {count} tensors exceeds {MAX_NDIM} per tensor")
    if table != table_bytes(count, dims, codecs):
        raise WireFormatError(f"table of {table} bytes does not fit {count} tensors with {dims} dimensions")
    if body != align(payload, 8) + table + meta:
        raise WireFormatError(
            f"body of {body} bytes != payload {payload} (aligned to 8) + table {table} + meta {meta}"
        )


def layout(aligns: Sequence[int], sizes: Sequence[int], start: int = 0) -> tuple[list[int], int]:
    """Return each tensor's byte offset (aligned to `aligns[i]`) and the end of the payload."""
    offsets = []
    end = start
    for a, n in zip(aligns, sizes, strict=True):
        end = (end + a - 1) // a * a
        offsets.append(end)
        end += n
    return offsets, end


@functools.lru_cache(maxsize=256)
def table_struct(count: int, dims_total: int, codecs: bool = False) -> struct.Struct:
    """The table's layout as a Struct: the u8 columns, padding, the i64 columns, the dims."""
    small = 4 * count if codecs else 3 * count
    pad = align(small, 8) - small
    wide = 2 * count if codecs else count
    return struct.Struct(f"<{small}B{pad}x{wide}q{dims_total}q")


def encode_table(
    wire_codes: Sequence[int],
    codes: Sequence[int],
    shapes: Sequence[Sequence[int]],
    offsets: Sequence[int],
    codecs: Sequence[int] | None = None,
    sizes: Sequence[int] | None = None,
) -> bytes:
    """Return the tensor table: codes, original codes, ndims, [codecs,] padding, offsets, [sizes,] dims.

    Pass `codecs` and `sizes` (blob bytes per tensor) only for a package holding codec tensors.
    """
    dims = [d for shape in shapes for d in shape]
    struct_ = table_struct(len(shapes), len(dims), codecs is not None)
    ndims = [len(s) for s in shapes]
    if codecs is None:
        return struct_.pack(*wire_codes, *codes, *ndims, *offsets, *dims)
    return struct_.pack(*wire_codes, *codes, *ndims, *codecs, *offsets, *(sizes or ()), *dims)


def parse_table(buf: bytes | np.ndarray, start: int, head: Header) -> list[Entry]:
    """Check the table at byte `start` of `buf` against the header and return its entries.

    Checks: known dtype codes, casts only between floats, ndims summing to the header's total, no
    negative dimension or extent beyond 2^48, offsets equal to the canonical layout ending exactly
    at the payload size, and, with codecs, raw sizes equal to their shape's bytes and codec blobs
    carried as uint8 at 8-byte offsets.

    Raises:
        WireFormatError: naming the first problem found.
    """
    n = head.count
    values = table_struct(n, head.dims_total, head.codecs).unpack_from(buf, start)
    wire, orig, ndims = values[:n], values[n : 2 * n], values[2 * n : 3 * n]
    if head.codecs:
        codecs, offsets, sizes, dims = (
            values[3 * n : 4 * n],
            values[4 * n : 5 * n],
            values[5 * n : 6 * n],
            values[6 * n :],
        )
    else:
        codecs, offsets, sizes, dims = (0,) * n, values[3 * n : 4 * n], None, values[4 * n :]
    if sum(ndims) != head.dims_total:
        raise WireFormatError(f"table ndims sum to {sum(ndims)}; the header says {head.dims_total}")
    entries = []
    pos = end = 0
    for i in range(n):
        code, want, k, codec = wire[i], orig[i], ndims[i], codecs[i]
        if code >= NUM_CODES or want >= NUM_CODES:
            raise WireFormatError(f"unknown dtype code in the table (known codes are 0..{NUM_CODES - 1})")
        shape = dims[pos : pos + k]
        pos += k
        if k > MAX_NDIM or (shape and (min(shape) < 0 or math.prod(max(d, 1) for d in shape) > MAX_DIM)):
            raise WireFormatError(
                f"table holds a shape {shape} with a negative dimension or beyond {MAX_DIM}"
            )
        if codec:
            if code != BYTE_CODE:
                raise WireFormatError(
                    f"tensor {i} has codec {codec} but wire dtype code {code}; blobs are uint8"
                )
            size, step = sizes[i], BLOB_ALIGN
        else:
            if code != want and (code not in FLOAT_CODES or want not in FLOAT_CODES):
                raise WireFormatError(
                    f"wire dtype code {code} differs from dtype code {want}; only floats may be cast"
                )
            step = ITEMSIZE_BY_CODE[code]
            size = math.prod(shape) * step
            if sizes is not None and sizes[i] != size:
                raise WireFormatError(f"tensor {i} is {sizes[i]} bytes on the wire; its shape needs {size}")
        end = (end + step - 1) // step * step
        if offsets[i] != end:
            raise WireFormatError(
                f"tensor {i} offset {offsets[i]} does not match the canonical layout ({end})"
            )
        if size < 0 or end + size > head.payload_bytes:
            raise WireFormatError(f"tensor {i} of {size} bytes at {end} runs past the payload")
        entries.append(Entry(code, want, shape, end, size, codec))
        end += size
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

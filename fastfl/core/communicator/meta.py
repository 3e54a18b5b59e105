"""The metadata section of fastfl's wire format: `Package.meta`, a few named numbers.

A package's `meta` (for example `{"num_samples": 600}`) travels after the tensor table, in a
section the header announces (flag bit 1 and its size in bytes 52..55). FedLab-style code never
sees it: it is not part of `content`, `slices` or FedLab's header fields. docs/wire.md specifies
the bytes; every field is checked on receipt, and the size is checked against the header before
anything is read.

Section, version 1 (all integers little-endian)::

    u8 version (1) | u8 entry count k (1..64) | k entries | zero padding to a multiple of 8
    entry: u8 kind (1 = int64, 2 = float64) | u8 key length L (1..32) | L ASCII key bytes | 8 value bytes
"""

from __future__ import annotations

import numbers
import re
import struct
from collections.abc import Mapping

from fastfl.errors import PackageError, PackageTypeError, WireFormatError

META_VERSION = 1
MAX_META_ENTRIES = 64
MAX_META_KEY = 32
MAX_META_BYTES = 4096
KIND_INT = 1
KIND_FLOAT = 2
_KEY = re.compile(rf"[A-Za-z0-9_.\-]{{1,{MAX_META_KEY}}}")
_HEAD = struct.Struct("<BB")
_VALUE = {KIND_INT: struct.Struct("<q"), KIND_FLOAT: struct.Struct("<d")}
_INT_RANGE = range(-(1 << 63), 1 << 63)

Meta = dict[str, int | float]


def check_meta(meta: Mapping[str, int | float] | None) -> Meta:
    """Return `meta` as a plain dict of str -> int | float, checking every key and value.

    Integers (Python or numpy) stay integers, real numbers become floats; bools are refused
    because they would come back as integers.

    Raises:
        PackageTypeError: `meta` is not a mapping, or a value is not an int or a float.
        PackageError: a key is not 1..32 characters of [A-Za-z0-9_.-], an integer does not fit in
            int64, or there are more than 64 entries.
    """
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise PackageTypeError(f"meta must be a dict of str -> int | float, got {type(meta).__name__}")
    if len(meta) > MAX_META_ENTRIES:
        raise PackageError(
            f"meta holds {len(meta)} entries; at most {MAX_META_ENTRIES} travel with a package"
        )
    out: Meta = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise PackageError(
                f"meta key {key!r} must be 1..{MAX_META_KEY} characters of letters, digits, '_', '.', '-'"
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise PackageTypeError(f"meta[{key!r}] must be an int or a float, got {type(value).__name__}")
        if isinstance(value, numbers.Integral):
            if int(value) not in _INT_RANGE:
                raise PackageError(f"meta[{key!r}] = {value} does not fit in a signed 64-bit integer")
            out[key] = int(value)
        else:
            out[key] = float(value)
    return out


def encode_meta(meta: Meta) -> bytes:
    """Return the metadata section of a checked `meta` (empty bytes when `meta` is empty)."""
    if not meta:
        return b""
    parts = [_HEAD.pack(META_VERSION, len(meta))]
    for key, value in meta.items():
        kind = KIND_INT if isinstance(value, int) else KIND_FLOAT
        raw = key.encode("ascii")
        parts += [_HEAD.pack(kind, len(raw)), raw, _VALUE[kind].pack(value)]
    section = b"".join(parts)
    return section + bytes(-len(section) % 8)


def check_meta_size(nbytes: int, flagged: bool) -> None:
    """Check the header's metadata size against its flag and the limits (before anything is read).

    Raises:
        WireFormatError: the size and the flag disagree, or the size is not a multiple of 8 up to
            MAX_META_BYTES.
    """
    if flagged != (nbytes > 0):
        raise WireFormatError(
            f"header metadata flag is {'set' if flagged else 'clear'} but the metadata size is {nbytes}"
        )
    if nbytes % 8 or nbytes > MAX_META_BYTES:
        raise WireFormatError(
            f"metadata section of {nbytes} bytes: must be a multiple of 8, at most {MAX_META_BYTES}"
        )


def decode_meta(buf: bytes | memoryview, start: int, nbytes: int) -> Meta:
    """Decode and check the metadata section at bytes [start, start + nbytes) of `buf`.

    Raises:
        WireFormatError: unknown version or kind, a bad or repeated key, an entry past the end of
            the section, or non-zero padding.
    """
    if not nbytes:
        return {}
    view = memoryview(buf)[start : start + nbytes]
    if len(view) != nbytes:
        raise WireFormatError(f"metadata section is {len(view)} bytes; the header says {nbytes}")
    version, count = _HEAD.unpack_from(view, 0)
    if version != META_VERSION:
        raise WireFormatError(
            f"metadata version {version} is not supported (this fastfl reads {META_VERSION})"
        )
    if not 1 <= count <= MAX_META_ENTRIES:
        raise WireFormatError(f"metadata holds {count} entries; 1..{MAX_META_ENTRIES} are allowed")
    out: Meta = {}
    pos = _HEAD.size
    for i in range(count):
        if pos + _HEAD.size > nbytes:
            raise WireFormatError(f"metadata entry {i} starts past the end of the section")
        kind, length = _HEAD.unpack_from(view, pos)
        value_at = pos + _HEAD.size + length
        if kind not in _VALUE or not 1 <= length <= MAX_META_KEY or value_at + 8 > nbytes:
            raise WireFormatError(f"metadata entry {i}: bad kind {kind} or key length {length}")
        key = bytes(view[pos + _HEAD.size : value_at]).decode("ascii", errors="replace")
        if not _KEY.fullmatch(key) or key in out:
            raise WireFormatError(f"metadata entry {i}: key {key!r} is malformed or repeated")
        out[key] = _VALUE[kind].unpack_from(view, value_at)[0]
        pos = value_at + 8
    if any(view[pos:]) or (nbytes - pos) >= 8:
        raise WireFormatError("metadata section has non-zero or excess padding after its last entry")
    return out

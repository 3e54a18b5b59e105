"""The LEAF cache file: one split's arrays plus a per-client offset index, safe to memory-map.

Layout (little-endian; every array starts at a multiple of 64 bytes):

| bytes | field |
|---|---|
| 0-7 | magic: `FFLEAF` then CR LF (the CR LF catches text-mode copies, as PNG's does) |
| 8-11 | format version (u32, 1) |
| 12-15 | number of arrays n (u32, at most 32) |
| 16-23 | total file size in bytes (u64): a truncated or extended file is refused |
| 24-55 | fingerprint of the sources (32 bytes, see `source.fingerprint`) |
| 56-59 | CRC-32 of the array table |
| 60-63 | CRC-32 of bytes 0-59 |
| 64- | table: n entries of 72 bytes: name (16, ASCII), dtype code (u8, fastfl.dtypes), ndim (u8), 2 pad, CRC-32 (u32), shape (4 × u64), offset (u64), size in bytes (u64) |

Arrays: `x`, `y` (and `x_offsets` for ragged token lists) hold the samples of all clients in
client order; `sample_offsets` (U+1 int64) is the per-client index; `names` and
`name_offsets` hold the user names as UTF-8; `vocab`/`vocab_offsets` the text sets'
vocabulary; `client_crc` one CRC-32 per client over that client's slice of the sample arrays.

Opening reads the header and table with `struct`/`numpy.frombuffer` (never pickle, never
`eval`: loading cannot execute code), checks every size against the file before mapping it,
checks the CRC of the index arrays, and checks each client's CRC when that client is read, so
a damaged byte anywhere is found at the cost of hashing only what is used.
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
import struct
import uuid
import zlib
from pathlib import Path

import numpy as np

from fastfl.dtypes import DType
from fastfl.errors import LeafCacheError

MAGIC = b"FFLEAF\r\n"
VERSION = 1
MAX_ARRAYS = 32
ALIGN = 64
SAMPLE_ARRAYS = ("x_offsets", "x", "y")
INDEX_ARRAYS = ("sample_offsets", "names", "name_offsets", "client_crc")
_HEADER = struct.Struct("<8sIIQ32sII")
_ENTRY = np.dtype(
    [
        ("name", "S16"),
        ("dtype", "u1"),
        ("ndim", "u1"),
        ("pad", "u1", (2,)),
        ("crc", "<u4"),
        ("shape", "<u8", (4,)),
        ("offset", "<u8"),
        ("nbytes", "<u8"),
    ]
)
_NUMPY = {DType.UINT8: np.uint8, DType.INT32: np.int32, DType.INT64: np.int64, DType.FLOAT32: np.float32}
_CODES = {np.dtype(v): k for k, v in _NUMPY.items()}


def _bytes(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _crc(*arrays: np.ndarray) -> int:
    crc = 0
    for a in arrays:
        crc = zlib.crc32(_bytes(a), crc)
    return crc


def encode_strings(items: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return UTF-8 `items` as one uint8 blob and int64 offsets (len(items) + 1)."""
    raw = [s.encode("utf-8") for s in items]
    offsets = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(np.array([len(b) for b in raw], dtype=np.int64), out=offsets[1:])
    return np.frombuffer(b"".join(raw), dtype=np.uint8).copy(), offsets


def decode_strings(blob: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Invert `encode_strings`."""
    data = blob.tobytes()
    bounds = offsets.tolist()
    return [data[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)]


def client_slices(arrays: dict[str, np.ndarray], begin: int, end: int) -> dict[str, np.ndarray]:
    """Return the sample arrays of samples [begin, end): views, `x_offsets` still absolute."""
    out = {"y": arrays["y"][begin:end]}
    if "x_offsets" in arrays:
        out["x_offsets"] = arrays["x_offsets"][begin : end + 1]
        out["x"] = arrays["x"][int(out["x_offsets"][0]) : int(out["x_offsets"][-1])]
    else:
        out["x"] = arrays["x"][begin:end]
    return out


def client_crc(slices: dict[str, np.ndarray]) -> int:
    """Return the CRC-32 of one client's sample slices (the order is fixed by SAMPLE_ARRAYS)."""
    return _crc(*(slices[k] for k in SAMPLE_ARRAYS if k in slices))


def client_checksums(arrays: dict[str, np.ndarray], sample_offsets: np.ndarray) -> np.ndarray:
    """Return one CRC-32 per client over its sample slices."""
    bounds = sample_offsets.tolist()
    crcs = [client_crc(client_slices(arrays, a, b)) for a, b in itertools.pairwise(bounds)]
    return np.array(crcs, dtype=np.int64)


def write(path: Path, arrays: dict[str, np.ndarray], fingerprint: bytes) -> None:
    """Write `arrays` to `path` atomically (a temporary file in the same folder, then rename)."""
    if len(arrays) > MAX_ARRAYS:
        raise ValueError(f"a cache holds at most {MAX_ARRAYS} arrays, got {len(arrays)}")
    if any(len(name) > 16 or not name.isascii() for name in arrays):
        raise ValueError(f"array names must be ASCII of at most 16 characters: {list(arrays)}")
    table = np.zeros(len(arrays), dtype=_ENTRY)
    offset = -(-(_HEADER.size + table.nbytes) // ALIGN) * ALIGN
    for entry, (name, a) in zip(table, arrays.items(), strict=True):
        entry["name"], entry["dtype"], entry["ndim"] = name.encode("ascii"), _CODES[a.dtype], a.ndim
        entry["shape"][: a.ndim] = a.shape
        entry["crc"] = 0 if name in SAMPLE_ARRAYS else _crc(a)
        entry["offset"], entry["nbytes"] = offset, a.nbytes
        offset += -(-a.nbytes // ALIGN) * ALIGN
    head = struct.pack("<8sIIQ32sI", MAGIC, VERSION, len(arrays), offset, fingerprint, _crc(table))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("xb") as f:
            f.write(head + struct.pack("<I", zlib.crc32(head)))
            f.write(table.tobytes())
            for entry, a in zip(table, arrays.values(), strict=True):
                f.seek(int(entry["offset"]))
                f.write(_bytes(a))
            f.truncate(offset)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _header(path: Path, size: int, fingerprint: bytes) -> tuple[int, int]:
    with path.open("rb") as f:
        raw = f.read(_HEADER.size)
        if len(raw) < _HEADER.size:
            raise LeafCacheError(f"{path}: truncated ({size} bytes, shorter than the header)")
        magic, version, n, total, stored_fp, table_crc, head_crc = _HEADER.unpack(raw)
        if magic != MAGIC:
            raise LeafCacheError(f"{path}: not a fastfl LEAF cache (bad magic)")
        if zlib.crc32(raw[:-4]) != head_crc:
            raise LeafCacheError(f"{path}: header is corrupt (CRC mismatch)")
        if version != VERSION:
            raise LeafCacheError(f"{path}: cache format version {version}, this fastfl reads {VERSION}")
        if total != size:
            raise LeafCacheError(f"{path}: truncated or extended ({size} bytes, header says {total})")
        if stored_fp != fingerprint:
            raise LeafCacheError(f"{path}: stale (the JSON files or reader options changed)")
        if n > MAX_ARRAYS:
            raise LeafCacheError(f"{path}: header lists {n} arrays (at most {MAX_ARRAYS})")
        table = f.read(n * _ENTRY.itemsize)
    if len(table) != n * _ENTRY.itemsize or zlib.crc32(table) != table_crc:
        raise LeafCacheError(f"{path}: array table is corrupt (CRC mismatch)")
    return n, size


def _array(mm: mmap.mmap, entry: np.void, path: Path) -> tuple[str, np.ndarray]:
    name = bytes(entry["name"]).rstrip(b"\0").decode("ascii", errors="replace")
    code, ndim, offset, nbytes = (
        int(entry["dtype"]),
        int(entry["ndim"]),
        int(entry["offset"]),
        int(entry["nbytes"]),
    )
    if code not in _NUMPY or ndim > 4:
        raise LeafCacheError(f"{path}: array {name!r} has an unknown dtype code {code} or ndim {ndim}")
    dtype = np.dtype(_NUMPY[DType(code)])
    shape = tuple(int(s) for s in entry["shape"][:ndim])
    count = math.prod(shape)
    if count * dtype.itemsize != nbytes or offset % ALIGN or offset + nbytes > len(mm):
        raise LeafCacheError(f"{path}: array {name!r} has an inconsistent size or offset")
    arr = np.frombuffer(mm, dtype=dtype, count=count, offset=offset).reshape(shape)
    if name not in SAMPLE_ARRAYS and _crc(arr) != int(entry["crc"]):
        raise LeafCacheError(f"{path}: array {name!r} is corrupt (CRC mismatch)")
    return name, arr


def read(path: Path, fingerprint: bytes) -> dict[str, np.ndarray]:
    """Map a cache file and return its arrays (read-only views of the mapping).

    Raises:
        LeafCacheError: missing, stale (fingerprint differs), truncated or corrupt; the
            caller rebuilds the cache from the JSON files.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError as err:
        raise LeafCacheError(f"{path}: no cache yet") from err
    except OSError as err:
        raise LeafCacheError(f"{path}: cannot read the cache ({err})") from err
    n, size = _header(path, size, fingerprint)
    with path.open("rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    table = np.frombuffer(mm, dtype=_ENTRY, count=n, offset=_HEADER.size)
    arrays = dict(_array(mm, entry, path) for entry in table)
    check_index(arrays, path)
    return arrays


def table(path: Path) -> dict[str, tuple[int, int]]:
    """Return {array name: (byte offset in the file, size in bytes)} of a cache file (no checks)."""
    raw = path.read_bytes()
    n = min(struct.unpack_from("<I", raw, 12)[0], MAX_ARRAYS)
    entries = np.frombuffer(raw, dtype=_ENTRY, count=n, offset=_HEADER.size)
    return {bytes(e["name"]).rstrip(b"\0").decode(): (int(e["offset"]), int(e["nbytes"])) for e in entries}


def check_index(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Check that the index arrays agree with each other and with the sample arrays."""

    def offsets_ok(o: np.ndarray | None, end: int) -> bool:
        return (
            o is not None
            and o.ndim == 1
            and o.size >= 1
            and o[0] == 0
            and o[-1] == end
            and bool((np.diff(o) >= 0).all())
        )

    missing = [k for k in ("x", "y", *INDEX_ARRAYS) if k not in arrays]
    if missing:
        raise LeafCacheError(f"{path}: arrays {missing} are missing")
    n = len(arrays["y"])
    so, crc = arrays["sample_offsets"], arrays["client_crc"]
    ok = offsets_ok(so, n) and crc.ndim == 1 and len(crc) == len(so) - 1
    ok = ok and offsets_ok(arrays["name_offsets"], len(arrays["names"]))
    ok = ok and len(arrays["name_offsets"]) == len(so)
    if "x_offsets" in arrays:
        ok = ok and len(arrays["x_offsets"]) == n + 1 and offsets_ok(arrays["x_offsets"], len(arrays["x"]))
    else:
        ok = ok and len(arrays["x"]) == n
    if not ok:
        raise LeafCacheError(f"{path}: the per-client index does not match the arrays")

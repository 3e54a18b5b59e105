from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastfl.core.communicator import Package, reader, supported_torch_dtypes, wire
from fastfl.errors import WireFormatError

FUZZ = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(package: Package) -> tuple[bytes, torch.Tensor]:
    """The header bytes and a private copy of the body, as a receiver would hold them."""
    return wire.encode_header(package.wire_header(0, 1)), package.body().clone()


def decode(raw: bytes, body: torch.Tensor, **kwargs) -> list[torch.Tensor]:
    return reader.unpack(body, wire.decode_header(raw), **kwargs)


def make(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point:
        return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -1000), min(info.max, 1000), shape, generator=g, dtype=dtype)


tensor_specs = st.lists(
    st.tuples(
        st.sampled_from(supported_torch_dtypes),
        st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
        st.integers(0, 2**31),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(tensor_specs)
def test_round_trip_keeps_dtypes_shapes_values(specs):
    ts = [make(*spec) for spec in specs]
    raw, body = encode(Package(2, ts))
    out = decode(raw, body)
    assert len(out) == len(ts)
    for a, b in zip(ts, out, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


@settings(max_examples=100, deadline=None)
@given(tensor_specs, st.sampled_from([torch.float16, torch.bfloat16]))
def test_wire_dtype_round_trip_restores_dtypes(specs, wire_dtype):
    ts = [make(*spec) for spec in specs]
    raw, body = encode(Package(2, ts, wire_dtype=wire_dtype))
    out = decode(raw, body)
    for a, b in zip(ts, out, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        expected = a.to(wire_dtype).to(a.dtype) if a.is_floating_point() else a
        assert torch.equal(b, expected)
    narrowed = decode(raw, body, restore_dtypes=False)
    assert all(t.dtype == wire_dtype for t in narrowed if t.is_floating_point())


def test_views_point_into_the_body():
    raw, body = encode(Package(0, [torch.arange(6.0).view(2, 3), torch.arange(3, dtype=torch.int16)]))
    a, b = decode(raw, body)
    base = body.data_ptr()
    assert base <= a.data_ptr() < base + body.numel()
    assert b.data_ptr() - base == 24  # int16 tensor right after 24 bytes of float32


def test_many_tensors_round_trip():
    ts = [torch.full((i % 7,), float(i)) for i in range(3000)]
    raw, body = encode(Package(0, ts))
    out = decode(raw, body)
    assert all(torch.equal(a, b) for a, b in zip(ts, out, strict=True))


def test_empty_package_has_empty_body():
    raw, body = encode(Package(4))
    head = wire.decode_header(raw)
    assert head.count == 0 and head.body_bytes == 0 and head.inline
    assert reader.unpack(body, head) == []


def test_inline_threshold():
    small = Package(0, torch.zeros(1000))
    assert small.wire_header(0, 1).inline
    big = Package(0, torch.zeros(3000))
    assert not big.wire_header(0, 1).inline


def _header_fields(**changes):
    base = {
        "magic": wire.MAGIC,
        "version": wire.VERSION,
        "flags": 0,
        "code": 2,
        "sender": 0,
        "receiver": 1,
        "count": 1,
        "payload": 16,
        "table": wire.table_bytes(1, 1),
        "body": 16 + wire.table_bytes(1, 1),
        "dims": 1,
        "meta": 0,
        "reserved": 0,
    }
    base.update(changes)
    return base


def _raw_header(crc: int | None = None, **changes) -> bytes:
    f = _header_fields(**changes)
    raw = wire.HEADER.pack(
        f["magic"],
        f["version"],
        f["flags"],
        f["code"],
        f["sender"],
        f["receiver"],
        f["count"],
        f["payload"],
        f["table"],
        f["body"],
        f["dims"],
        f["meta"],
        f["reserved"],
        0,
    )[:60]
    return raw + struct.pack("<I", zlib.crc32(raw) if crc is None else crc)


def test_valid_raw_header_decodes():
    head = wire.decode_header(_raw_header())
    assert (head.count, head.payload_bytes, head.body_bytes) == (1, 16, 16 + wire.table_bytes(1, 1))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "header is 0 bytes"),
        (b"FFLW" + bytes(20), "header is 24 bytes"),
        (_raw_header(magic=b"XXXX"), "bad magic"),
        (_raw_header(version=2), "version 2 is not supported"),
        (_raw_header(crc=12345), "checksum mismatch"),
        (_raw_header(flags=8), "unknown header flags"),
        (_raw_header(body=1 << 40, payload=(1 << 40) - 24), "exceeds max_message_bytes"),
        (_raw_header(table=999), "table of 999 bytes"),
        (_raw_header(body=17), "payload"),
        (_raw_header(dims=1000, table=wire.table_bytes(1, 1000)), "dimensions for 1 tensors"),
        (_raw_header(flags=1, payload=9000, body=9000 + wire.table_bytes(1, 1)), "inline body"),
        (_raw_header(reserved=1), "reserved header bytes"),
        (_raw_header(flags=2), "metadata flag is set but the metadata size is 0"),
        (_raw_header(meta=8, body=16 + wire.table_bytes(1, 1) + 8), "metadata flag is clear"),
        (_raw_header(flags=2, meta=12, body=16 + wire.table_bytes(1, 1) + 12), "multiple of 8"),
        (_raw_header(flags=2, meta=8192, body=16 + wire.table_bytes(1, 1) + 8192), "at most 4096"),
        (_raw_header(flags=2, meta=8), "meta 8"),
    ],
)
def test_bad_headers_raise_clear_errors(raw, match):
    with pytest.raises(WireFormatError, match=match):
        wire.decode_header(raw)


def test_max_message_bytes_is_configurable():
    raw, _ = encode(Package(0, torch.zeros(100)))
    with pytest.raises(WireFormatError, match="max_message_bytes=100"):
        wire.decode_header(raw, max_message_bytes=100)


def _corrupt_table(mutate) -> None:
    raw, body = encode(Package(0, [torch.zeros(4), torch.zeros(2, 2, dtype=torch.int64)]))
    head = wire.decode_header(raw)
    table = body[wire.align(head.payload_bytes, 8) :]
    mutate(table.numpy(), head.count)
    reader.unpack(body, head)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t, n: t.__setitem__(0, 200), "unknown dtype code"),
        (lambda t, n: t.__setitem__(0, 6), "canonical layout"),  # float64 instead of float32
        (lambda t, n: t.__setitem__(n, 3), "only floats may be cast"),
        (lambda t, n: t.__setitem__(2 * n, 3), "ndims sum"),
        (
            lambda t, n: t[8 + 8 * n + 8 : 8 + 8 * n + 16].view("<i8").__setitem__(0, 3),
            "runs past the payload",
        ),
        (lambda t, n: t[8 + 8 * n : 8 + 8 * n + 8].view("<i8").__setitem__(0, -4), "negative dimension"),
        (lambda t, n: t[8 : 8 + 8].view("<i8").__setitem__(0, 8), "canonical layout"),
    ],
)
def test_corrupt_tables_raise_clear_errors(mutate, match):
    with pytest.raises(WireFormatError, match=match):
        _corrupt_table(mutate)


def test_unpack_rejects_a_body_of_the_wrong_size():
    raw, body = encode(Package(0, torch.zeros(4)))
    with pytest.raises(WireFormatError, match="body must be"):
        reader.unpack(body[:-1], wire.decode_header(raw))


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_fuzz_random_header_bytes(raw):
    with pytest.raises(WireFormatError):
        wire.decode_header(raw)


@FUZZ
@given(
    count=st.integers(0, 6),
    dims=st.integers(0, 12),
    payload=st.integers(0, 256),
    flags=st.sampled_from([0, 1]),
    body_bytes=st.binary(min_size=0, max_size=1024),
)
def test_fuzz_consistent_header_random_body(count, dims, payload, flags, body_bytes):
    table = wire.table_bytes(count, dims)
    total = wire.align(payload, 8) + table
    raw = _raw_header(count=count, dims=dims, payload=payload, table=table, body=total, flags=flags)
    body = torch.tensor(list(body_bytes.ljust(total, b"\0")[:total]), dtype=torch.uint8)
    try:
        out = reader.unpack(body, wire.decode_header(raw))
    except WireFormatError:
        return
    assert len(out) == count
    assert sum(t.numel() * t.element_size() for t in out) <= payload


_VALID = encode(
    Package(0, [torch.arange(5.0), torch.ones(2, 3, dtype=torch.int32), torch.tensor(7, dtype=torch.int8)])
)


@FUZZ
@given(st.data())
def test_fuzz_mutated_valid_bodies(data):
    raw, body = _VALID[0], _VALID[1].clone()
    head = wire.decode_header(raw)
    flips = data.draw(st.lists(st.tuples(st.integers(0, body.numel() - 1), st.integers(0, 255)), max_size=4))
    arr = body.numpy()
    for pos, value in flips:
        arr[pos] = value
    try:
        out = reader.unpack(body, head)
    except WireFormatError:
        return
    assert len(out) == 3
    for t in out:
        end = t.data_ptr() + t.numel() * t.element_size()
        assert body.data_ptr() <= t.data_ptr() and end <= body.data_ptr() + head.payload_bytes


def test_table_columns_are_little_endian():
    table = wire.encode_table([5, 3], [5, 3], [(2,), (1, 1)], [0, 8])
    assert table[:6] == bytes([5, 3, 5, 3, 1, 2])
    assert np.frombuffer(table[8:24], "<i8").tolist() == [0, 8]
    assert np.frombuffer(table[24:], "<i8").tolist() == [2, 1, 1]

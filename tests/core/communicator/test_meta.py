"""Package.meta: checked on the way in, carried by fastfl's wire format, invisible to FedLab's fields."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfl.core.communicator import Package, reader, wire
from fastfl.core.communicator.meta import MAX_META_BYTES, decode_meta, encode_meta
from fastfl.errors import PackageError, PackageTypeError, WireFormatError
from fastfl.utils import MessageCode
from tests.core.communicator.test_wire_golden import GOLDEN_BODY, _golden_package

# The golden package of test_wire_golden with meta={"num_samples": 600, "loss": 0.5}, rank 0 -> 3.
GOLDEN_META_HEADER = bytes.fromhex(
    "46464c57"  # magic "FFLW"
    "0100"  # version 1
    "0300"  # flags: body inline (bit 0), metadata section present (bit 1)
    "02000000"  # message code 2 (ParameterUpdate)
    "00000000"  # sender rank 0
    "03000000"  # receiver rank 3
    "02000000"  # 2 tensors
    "0a00000000000000"  # payload bytes 10
    "3000000000000000"  # table bytes 48
    "6800000000000000"  # body bytes 104 = align8(10) + 48 + 40
    "03000000"  # 3 dimensions in all
    "28000000"  # metadata bytes 40
    "00000000"  # reserved
    "7606eea1"  # CRC-32 of the 60 bytes above
)
GOLDEN_META_SECTION = bytes.fromhex(
    "01"  # metadata version 1
    "02"  # 2 entries
    "010b6e756d5f73616d706c65735802000000000000"  # int64, 11-byte key "num_samples", 600
    "02046c6f7373000000000000e03f"  # float64, 4-byte key "loss", 0.5
    "000000"  # zero padding to 40 bytes
)


def _with_meta(**meta) -> Package:
    package = _golden_package()
    package.meta.update(meta)
    return package


def test_golden_frame_with_meta():
    (frame,) = Package(
        MessageCode.ParameterUpdate,
        [torch.tensor([1.0, -2.0]), torch.tensor([[7]], dtype=torch.int16)],
        meta={"num_samples": 600, "loss": 0.5},
    ).wire_parts(0, 3)
    raw = frame.numpy().tobytes()
    assert raw[:64] == GOLDEN_META_HEADER
    assert struct.unpack("<I", GOLDEN_META_HEADER[60:])[0] == zlib.crc32(GOLDEN_META_HEADER[:60])
    assert raw[64:128] == GOLDEN_BODY  # payload and table are unchanged by metadata
    assert raw[128:168] == GOLDEN_META_SECTION
    assert raw[168:] == bytes(8192 - 168)


def test_golden_meta_decodes():
    head = wire.decode_header(GOLDEN_META_HEADER)
    assert (head.meta_bytes, head.body_bytes) == (40, 104)
    body = torch.frombuffer(bytearray(GOLDEN_BODY + GOLDEN_META_SECTION), dtype=torch.uint8)
    a, b = reader.unpack(body, head)
    assert a.tolist() == [1.0, -2.0] and b.tolist() == [[7]]
    meta = decode_meta(GOLDEN_META_SECTION, 0, 40)
    assert meta == {"num_samples": 600, "loss": 0.5}
    assert isinstance(meta["num_samples"], int) and isinstance(meta["loss"], float)


def test_meta_is_invisible_to_fedlab_fields():
    plain, tagged = _golden_package(), _with_meta(num_samples=600)
    assert tagged.slices == plain.slices
    assert tagged.header.tolist() == plain.header.tolist()
    assert tagged.count == plain.count and tagged.nbytes == plain.nbytes
    assert [t.tolist() for t in tagged.tensors] == [t.tolist() for t in plain.tensors]
    assert Package().meta == {} and Package(meta=None).meta == {}


def test_meta_changed_after_a_send_is_sent_anew():
    package = _with_meta(num_samples=600)
    first = package.wire_parts(0, 3)[0].numpy().tobytes()
    package.meta["num_samples"] = 7
    second = package.wire_parts(0, 3)[0].numpy().tobytes()
    head = wire.decode_header(second[:64])
    assert decode_meta(second, 64 + 64, head.meta_bytes) == {"num_samples": 7}
    assert first != second
    package.meta.clear()  # shorter body: the frame must again be the canonical one
    (frame,) = package.wire_parts(0, 3)
    raw = frame.numpy().tobytes()
    assert raw[64:128] == GOLDEN_BODY and raw[128:] == bytes(8192 - 128)
    assert wire.decode_header(raw[:64]).meta_bytes == 0


def test_meta_on_an_empty_package_and_a_large_one():
    (frame,) = Package(MessageCode.Exit, meta={"round": 3}).wire_parts(1, 0)
    raw = frame.numpy().tobytes()
    head = wire.decode_header(raw[:64])
    assert (head.count, head.body_bytes, head.meta_bytes) == (0, 24, 24)
    assert decode_meta(raw, 64, 24) == {"round": 3}
    big = Package(0, torch.arange(5000.0), meta={"num_samples": 12})
    frame, body = big.wire_parts(0, 1)
    head = wire.decode_header(frame.numpy()[:64])
    assert body.numel() == head.body_bytes and not head.inline
    start = wire.align(head.payload_bytes, 8) + head.table_bytes
    assert decode_meta(body.numpy(), start, head.meta_bytes) == {"num_samples": 12}
    assert torch.equal(reader.unpack(body, head)[0], torch.arange(5000.0))


def test_meta_that_does_not_fit_the_frame_moves_the_body_out():
    package = Package(0, torch.zeros(2020))  # 8080 payload bytes + 24 table bytes: just inline
    assert package.wire_header(0, 1).inline
    package.meta.update({f"key{i}": i for i in range(4)})
    frame, body = package.wire_parts(0, 1)
    head = wire.decode_header(frame.numpy()[:64])
    assert not head.inline and body.numel() == head.body_bytes
    assert torch.equal(reader.unpack(body, head)[0], torch.zeros(2020))
    package.meta.clear()  # back to inline from a large buffer
    (again,) = package.wire_parts(0, 1)
    assert again.numel() == wire.FRAME_BYTES and wire.decode_header(again.numpy()[:64]).inline


@pytest.mark.parametrize(
    ("meta", "error", "match"),
    [
        ([("a", 1)], PackageTypeError, "meta must be a dict"),
        ({"": 1}, PackageError, "meta key ''"),
        ({"a b": 1}, PackageError, "meta key 'a b'"),
        ({"k" * 33: 1}, PackageError, "1..32 characters"),
        ({"é": 1}, PackageError, "meta key"),
        ({1: 1}, PackageError, "meta key 1"),
        ({"flag": True}, PackageTypeError, "must be an int or a float, got bool"),
        ({"t": torch.tensor(1.0)}, PackageTypeError, "got Tensor"),
        ({"s": "1"}, PackageTypeError, "got str"),
        ({"n": 1 << 63}, PackageError, "signed 64-bit"),
        ({f"k{i}": i for i in range(65)}, PackageError, "65 entries"),
    ],
)
def test_bad_meta_is_refused_naming_the_problem(meta, error, match):
    with pytest.raises(error, match=match):
        Package(0, meta=meta)


def test_meta_made_bad_after_construction_is_refused_at_send():
    package = Package(0, torch.zeros(3), meta={"n": 1})
    package.meta["n"] = "many"
    with pytest.raises(PackageTypeError, match="got str"):
        package.wire_parts(0, 1)


def test_numpy_numbers_are_accepted_as_python_numbers():
    package = Package(0, meta={"n": np.int64(5), "x": np.float32(0.25)})
    assert package.meta == {"n": 5, "x": 0.25}
    assert type(package.meta["n"]) is int and type(package.meta["x"]) is float


def test_largest_meta_fits_the_limit():
    meta = {f"{i:02d}" + "k" * 30: -(1 << 63) for i in range(64)}
    section = encode_meta(Package(meta=meta).meta)
    assert len(section) <= MAX_META_BYTES
    assert decode_meta(section, 0, len(section)) == meta


values = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), st.floats(allow_nan=False))
keys = st.text("abcXYZ019_.-", min_size=1, max_size=32)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, values, max_size=64))
def test_meta_round_trips_exactly(meta):
    section = encode_meta(Package(meta=meta).meta)
    assert len(section) % 8 == 0
    assert decode_meta(section, 0, len(section)) == meta


def test_nan_and_infinities_round_trip():
    out = decode_meta(encode_meta({"a": math.nan, "b": -math.inf}), 0, 16 + 8)
    assert math.isnan(out["a"]) and out["b"] == -math.inf


_SECTION = encode_meta({"num_samples": 600, "loss": 0.5})


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b.__setitem__(0, 2), "metadata version 2"),
        (lambda b: b.__setitem__(1, 0), "0 entries"),
        (lambda b: b.__setitem__(1, 3), "entry 2 starts past the end|bad kind"),
        (lambda b: b.__setitem__(2, 9), "bad kind 9"),
        (lambda b: b.__setitem__(3, 0), "key length 0"),
        (lambda b: b.__setitem__(3, 40), "key length 40"),
        (lambda b: b.__setitem__(4, ord(" ")), "malformed or repeated"),
        (lambda b: b.__setitem__(39, 1), "non-zero or excess padding"),
    ],
)
def test_corrupt_meta_sections_raise_clear_errors(mutate, match):
    raw = bytearray(_SECTION)
    mutate(raw)
    with pytest.raises(WireFormatError, match=match):
        decode_meta(bytes(raw), 0, len(raw))


def test_repeated_key_is_refused():
    one = encode_meta({"aa": 1})
    entry = one[2:14]
    raw = bytes([1, 2]) + entry + entry
    raw += bytes(-len(raw) % 8)
    with pytest.raises(WireFormatError, match="malformed or repeated"):
        decode_meta(raw, 0, len(raw))


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=96).map(lambda b: b.ljust(-(-len(b) // 8) * 8 or 8, b"\0")))
def test_fuzz_random_meta_sections(raw):
    try:
        out = decode_meta(raw, 0, len(raw))
    except WireFormatError:
        return
    assert all(isinstance(v, int | float) for v in out.values())


def test_parse_content_of_an_empty_package_is_empty_as_in_fedlab():
    p = Package()
    assert Package.parse_content(p.slices, p.content) == []
    with pytest.raises(WireFormatError, match="content is NoneType"):
        Package.parse_content([2, 1, 2], None)

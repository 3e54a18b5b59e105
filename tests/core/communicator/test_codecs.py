"""Codecs on the wire (contract C5): the registry, EncodedTensor packing, the codec table, gloo."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastfl.core.communicator import Package, PackageProcessor, reader, wire
from fastfl.core.communicator.codecs import Codec, EncodedTensor, get_codec, register_codec, registered_codecs
from fastfl.errors import CodecError, PackageError, WireFormatError
from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks

TOY_CODE = 200


def _encode(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float16).reshape(-1).view(torch.uint8)


def _decode(blob: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return blob.view(torch.float16).to(dtype).reshape(shape)


TOY = Codec(TOY_CODE, "toy-half", _encode, _decode)
register_codec(TOY)  # at import: the test process and every rank process know it


def toy(t: torch.Tensor) -> EncodedTensor:
    return EncodedTensor(TOY_CODE, tuple(t.shape), t.dtype, TOY.encode(t))


# The golden package of test_wire_golden with its float32 tensor encoded by the toy codec.
GOLDEN_CODEC_HEADER = bytes.fromhex(
    "46464c57"  # magic "FFLW"
    "0100"  # version 1
    "0500"  # flags: inline (bit 0), codec table (bit 2)
    "02000000"  # message code 2 (ParameterUpdate)
    "00000000"  # sender rank 0
    "03000000"  # receiver rank 3
    "02000000"  # 2 tensors
    "0600000000000000"  # payload 6: a 4-byte blob at 0, int16 at 4
    "4000000000000000"  # table 64 = align8(4n) + 16n + 8D
    "4800000000000000"  # body 72 = align8(6) + 64
    "03000000"  # 3 dimensions in all
    "00000000"  # no metadata
    "00000000"  # reserved
    "a306339c"  # CRC-32 of the 60 bytes above
)
GOLDEN_CODEC_BODY = bytes.fromhex(
    "003c00c0"  # blob: float16 1.0, -2.0
    "0700"  # int16 7 at offset 4
    "0000"  # padding to 8
    "0801"  # wire dtype codes: uint8 (the blob), int16
    "0501"  # dtype codes handed out: float32, int16
    "0102"  # ndims
    "c800"  # codecs: 200 (toy-half), 0 (raw)
    "0000000000000000"  # offset of tensor 0
    "0400000000000000"  # offset of tensor 1
    "0400000000000000"  # bytes on the wire of tensor 0
    "0200000000000000"  # bytes on the wire of tensor 1
    "0200000000000000"  # dims of tensor 0: (2,)
    "0100000000000000"  # dims of tensor 1: (1, 1)
    "0100000000000000"
)


def _golden() -> Package:
    return Package(
        MessageCode.ParameterUpdate, [toy(torch.tensor([1.0, -2.0])), torch.tensor([[7]], dtype=torch.int16)]
    )


def test_golden_codec_frame():
    (frame,) = _golden().wire_parts(0, 3)
    raw = frame.numpy().tobytes()
    assert raw[:64] == GOLDEN_CODEC_HEADER
    assert raw[64:136] == GOLDEN_CODEC_BODY
    assert raw[136:] == bytes(8192 - 136)


def test_golden_codec_bytes_decode():
    head = wire.decode_header(GOLDEN_CODEC_HEADER)
    assert head.codecs and head.table_bytes == wire.table_bytes(2, 3, codecs=True) == 64
    a, b = reader.unpack(torch.frombuffer(bytearray(GOLDEN_CODEC_BODY), dtype=torch.uint8), head)
    assert a.dtype == torch.float32 and a.tolist() == [1.0, -2.0]
    assert b.tolist() == [[7]]


def test_package_without_codecs_keeps_the_plain_table():
    head = Package(0, torch.zeros(3)).wire_header(0, 1)
    assert not head.codecs and head.table_bytes == wire.table_bytes(1, 1)


def test_package_face_of_an_encoded_tensor():
    p = _golden()
    assert p.has_codecs and p.count == 2
    assert p.nbytes == 6  # the blob's 4 bytes, not the decoded 8
    assert p.slices == [4, 1, 4, 1, 2, 1, 1]  # FedLab records of the bytes as they travel
    a, b = p.tensors
    assert a.tolist() == [1.0, -2.0] and b.tolist() == [[7]]
    with pytest.raises(PackageError, match="codec-encoded"):
        p.to(torch.float32)


def test_large_mixed_package_round_trips():
    x = torch.linspace(-3, 3, 5000).reshape(50, 100)
    p = Package(0, [torch.arange(3), toy(x), torch.ones(2, dtype=torch.float64), toy(torch.zeros(0))])
    frame, body = p.wire_parts(0, 1)
    head = wire.decode_header(frame.numpy()[:64])
    assert not head.inline and head.codecs
    out = reader.unpack(body.clone(), head)
    assert torch.equal(out[0], torch.arange(3))
    assert out[1].shape == (50, 100) and torch.equal(out[1], x.half().float())
    assert torch.equal(out[2], torch.ones(2, dtype=torch.float64))
    assert out[3].shape == (0,)


def test_registry_lookups_and_clashes():
    assert get_codec(TOY_CODE) is TOY and get_codec("toy-half") is TOY
    assert TOY in registered_codecs()
    register_codec(TOY)  # again: a no-op
    with pytest.raises(CodecError, match="clashes"):
        register_codec(Codec(TOY_CODE, "other", _encode, _decode))
    with pytest.raises(CodecError, match="clashes"):
        register_codec(Codec(201, "toy-half", _encode, _decode))
    for code in (0, 256, -1, True):
        with pytest.raises(CodecError, match=r"1\.\.255"):
            register_codec(Codec(code, f"bad{code}", _encode, _decode))


def test_unknown_codec_is_a_clear_error():
    with pytest.raises(WireFormatError, match=r"unknown codec 77; known codecs: .*200 \(toy-half\)"):
        get_codec(77)
    with pytest.raises(PackageError, match="unknown codec 77"):
        Package(0, EncodedTensor(77, (2,), torch.float32, torch.zeros(4, dtype=torch.uint8)))


def _body_with_codec_byte(value: int) -> tuple[wire.Header, torch.Tensor]:
    p = _golden()
    head = p.wire_header(0, 1)
    body = p.body().clone()
    body[head.table_at + 6] = value  # the first tensor's codec byte
    return head, body


def test_received_unknown_codec_names_it():
    head, body = _body_with_codec_byte(77)
    with pytest.raises(WireFormatError, match="unknown codec 77"):
        reader.unpack(body, head)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t: t.__setitem__(0, 5), "blobs are uint8"),  # blob claims float32 on the wire
        (lambda t: t[32:40].view(torch.int64).fill_(3), "its shape needs 2"),  # raw size != shape
        (lambda t: t[24:32].view(torch.int64).fill_(1 << 40), "runs past the payload"),  # blob size
        (lambda t: t[8:16].view(torch.int64).fill_(1), "canonical layout"),  # blob not 8-aligned
    ],
)
def test_corrupt_codec_tables_raise_clear_errors(mutate, match):
    p = _golden()
    head = p.wire_header(0, 1)
    body = p.body().clone()
    mutate(body[head.table_at :])
    with pytest.raises(WireFormatError, match=match):
        reader.unpack(body, head)


def test_codec_that_misbehaves_is_reported():
    def wrong_shape(blob, shape, dtype):
        return torch.zeros(3, dtype=dtype)

    def raises(blob, shape, dtype):
        raise ValueError("truncated blob")

    register_codec(Codec(210, "wrong-shape", _encode, wrong_shape))
    register_codec(Codec(211, "raises", _encode, raises))
    for code, match in (
        (210, "decoded to torch.float32 \\(3,\\)"),
        (211, "could not decode.*truncated blob"),
    ):
        head, body = _body_with_codec_byte(code)
        with pytest.raises(WireFormatError, match=match):
            reader.unpack(body, head)


def _exchange(rank: int, world: int, port: int) -> list:
    net = network(rank, world, port)
    net.init_network_connection()
    proc = PackageProcessor(timeout=30)
    try:
        x = torch.linspace(-1, 1, 6000)
        if rank == 1:
            register_codec(Codec(212, "sender-only", _encode, _decode))
            proc.send_package(Package(2, [toy(x[:10]), torch.arange(4)], meta={"num_samples": 3}), 0)
            proc.send_package(Package(2, [torch.ones(2), toy(x)]), 0)
            proc.send_package(Package(2, EncodedTensor(212, (1,), torch.float32, _encode(torch.ones(1)))), 0)
            return []
        small, large = proc.receive(1), proc.receive(1)
        with pytest.raises(WireFormatError) as err:
            proc.receive(1)
        ok = torch.equal(small.content[0], x[:10].half().float()) and torch.equal(
            large.content[1], x.half().float()
        )
        return [ok, small.meta, small.nbytes, large.nbytes, str(err.value)]
    finally:
        net.close_network_connection()


@pytest.mark.distributed
def test_codec_round_trip_over_gloo(free_port):
    ok, meta, small_bytes, large_bytes, error = run_ranks(_exchange, 2, free_port, timeout=90)[0]
    assert ok and meta == {"num_samples": 3}
    assert (small_bytes, large_bytes) == (20 + 32, 8 + 12000)  # blobs are half the float32 bytes
    assert "unknown codec 212" in error


def test_decoded_size_is_bounded_before_decoding():
    huge = EncodedTensor(TOY_CODE, (1 << 40,), torch.float64, torch.zeros(8, dtype=torch.uint8))
    p = Package(0, huge)
    with pytest.raises(WireFormatError, match="would decode to 8796093022208 bytes"):
        reader.unpack(p.body(), p.wire_header(0, 1))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_codec_bodies_raise_only_wire_format_errors(data):
    package = Package(
        0, [torch.arange(5.0), toy(torch.linspace(0, 1, 6).reshape(2, 3)), torch.ones(2, dtype=torch.int8)]
    )
    head = package.wire_header(0, 1)
    body = package.body().clone()
    arr = body.numpy()
    for pos, value in data.draw(
        st.lists(st.tuples(st.integers(0, arr.size - 1), st.integers(0, 255)), max_size=4)
    ):
        arr[pos] = value
    try:
        out = reader.unpack(body, head)
    except WireFormatError:
        return
    assert len(out) == 3 and out[1].shape == (2, 3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(0, 5),
    dims=st.integers(0, 10),
    payload=st.integers(0, 200),
    body_bytes=st.binary(min_size=0, max_size=800),
)
def test_fuzz_codec_table_with_random_bytes(count, dims, payload, body_bytes):
    table = wire.table_bytes(count, dims, codecs=True)
    head = wire.Header(2, 0, 1, count, payload, table, wire.align(payload, 8) + table, dims, True, 0, True)
    body = torch.tensor(list(body_bytes.ljust(head.body_bytes, b"\0")[: head.body_bytes]), dtype=torch.uint8)
    try:
        out = reader.unpack(body, wire.decode_header(wire.encode_header(head)))
    except WireFormatError:
        return
    assert len(out) == count

"""Golden bytes: the exact bytes docs/wire.md specifies. A change here is a wire format change."""

from __future__ import annotations

import struct
import zlib

import torch

from fastfl.core.communicator import Package, reader, wire
from fastfl.utils import MessageCode

# Package(ParameterUpdate, [float32 [1, -2], int16 [[7]]]) from rank 0 to rank 3.
GOLDEN_HEADER = bytes.fromhex(
    "46464c57"  # magic "FFLW"
    "0100"  # version 1
    "0100"  # flags: body inline
    "02000000"  # message code 2 (ParameterUpdate)
    "00000000"  # sender rank 0
    "03000000"  # receiver rank 3
    "02000000"  # 2 tensors
    "0a00000000000000"  # payload bytes 10
    "3000000000000000"  # table bytes 48
    "4000000000000000"  # body bytes 64 = align8(10) + 48
    "03000000"  # 3 dimensions in all
    "00000000"  # metadata bytes 0: no metadata section
    "00000000"  # reserved
    "40aa110f"  # CRC-32 of the 60 bytes above
)
GOLDEN_BODY = bytes.fromhex(
    "0000803f"  # 1.0f
    "000000c0"  # -2.0f
    "0700"  # int16 7 at offset 8
    "000000000000"  # padding to 16
    "0501"  # wire dtype codes: float32, int16
    "0501"  # dtype codes
    "0102"  # ndims
    "0000"  # padding to 8
    "0000000000000000"  # offset of tensor 0
    "0800000000000000"  # offset of tensor 1
    "0200000000000000"  # dims of tensor 0: (2,)
    "0100000000000000"  # dims of tensor 1: (1, 1)
    "0100000000000000"
)


def _golden_package() -> Package:
    return Package(
        MessageCode.ParameterUpdate, [torch.tensor([1.0, -2.0]), torch.tensor([[7]], dtype=torch.int16)]
    )


def test_golden_inline_frame():
    parts = _golden_package().wire_parts(0, 3)
    assert len(parts) == 1
    frame = parts[0].numpy().tobytes()
    assert len(frame) == wire.FRAME_BYTES == 8192
    assert frame[:64] == GOLDEN_HEADER
    assert frame[64:128] == GOLDEN_BODY
    assert frame[128:] == bytes(8192 - 128)


def test_golden_crc_is_crc32_of_the_first_60_bytes():
    assert struct.unpack("<I", GOLDEN_HEADER[60:])[0] == zlib.crc32(GOLDEN_HEADER[:60])


def test_golden_bytes_decode():
    head = wire.decode_header(GOLDEN_HEADER)
    body = torch.frombuffer(bytearray(GOLDEN_BODY), dtype=torch.uint8)
    a, b = reader.unpack(body, head)
    assert a.tolist() == [1.0, -2.0] and a.dtype == torch.float32
    assert b.tolist() == [[7]] and b.dtype == torch.int16


def test_golden_two_transfer_package():
    big = torch.zeros(3000)
    big[0], big[-1] = 1.5, -1.0
    parts = Package(MessageCode.SetUp, big).wire_parts(2, 0)
    assert len(parts) == 2
    frame, body = (p.numpy().tobytes() for p in parts)
    expected_header = wire.HEADER.pack(
        b"FFLW", 1, 0, 5, 2, 0, 1, 12000, wire.table_bytes(1, 1), 12000 + 24, 1, 0, 0, 0
    )[:60]
    assert frame[:60] == expected_header
    assert frame[60:64] == struct.pack("<I", zlib.crc32(expected_header))
    assert frame[64:] == bytes(8192 - 64)
    assert len(body) == 12000 + 24
    assert body[:4] == struct.pack("<f", 1.5) and body[11996:12000] == struct.pack("<f", -1.0)
    assert body[12000:] == bytes([5, 5, 1, 0, 0, 0, 0, 0]) + struct.pack("<qq", 0, 3000)


def test_golden_wire_dtype_records_both_codes():
    body = Package(0, torch.tensor([0.5, 2.0]), wire_dtype=torch.float16).body().numpy().tobytes()
    assert body[:4] == struct.pack("<ee", 0.5, 2.0)
    assert body[8:11] == bytes([4, 5, 1])  # wire float16, dtype float32, 1 dimension


def test_golden_empty_package_is_a_bare_header():
    package = Package(MessageCode.Exit)
    for dst in (0, 2):  # the same package sent twice
        (frame,) = package.wire_parts(1, dst)
        raw = frame.numpy().tobytes()
        head = wire.decode_header(raw[:64])
        assert (head.count, head.body_bytes, head.message_code, head.receiver) == (0, 0, 4, dst)
        assert head.inline and raw[64:] == bytes(8192 - 64)


def test_golden_frame_reused_for_a_second_destination():
    package = _golden_package()
    package.wire_parts(0, 3)
    frame = package.wire_parts(0, 1)[0].numpy().tobytes()
    assert frame[64:128] == GOLDEN_BODY
    assert wire.decode_header(frame[:64]).receiver == 1

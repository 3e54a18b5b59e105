from __future__ import annotations

import pytest
import torch

from fastfl.core import communicator as comm
from fastfl.core.communicator import Package
from fastfl.errors import FastFLError, WireFormatError
from fastfl.utils import MessageCode


def test_constants_match_fedlab():
    assert (comm.HEADER_SENDER_RANK_IDX, comm.HEADER_RECEIVER_RANK_IDX, comm.HEADER_SLICE_SIZE_IDX) == (
        0,
        1,
        2,
    )
    assert (comm.HEADER_MESSAGE_CODE_IDX, comm.HEADER_DATA_TYPE_IDX, comm.HEADER_SIZE) == (3, 4, 5)
    assert (comm.DEFAULT_RECEIVER_RANK, comm.DEFAULT_SLICE_SIZE, comm.DEFAULT_MESSAGE_CODE_VALUE) == (
        -1,
        0,
        0,
    )
    codes = (comm.INT8, comm.INT16, comm.INT32, comm.INT64, comm.FLOAT16, comm.FLOAT32, comm.FLOAT64)
    assert codes == tuple(range(7))
    assert (comm.BFLOAT16, comm.UINT8, comm.BOOL) == (7, 8, 9)
    assert comm.supported_torch_dtypes[:7] == [
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.float16,
        torch.float32,
        torch.float64,
    ]


@pytest.mark.parametrize("dtype", comm.supported_torch_dtypes)
def test_dtype_codes_round_trip(dtype):
    assert comm.dtype_flab2torch(comm.dtype_torch2flab(dtype)) == dtype


def test_dtype_codes_reject_unknown():
    with pytest.raises(TypeError, match="complex64"):
        comm.dtype_torch2flab(torch.complex64)
    with pytest.raises(ValueError, match="unknown dtype code -1"):
        comm.dtype_flab2torch(-1)  # FedLab wraps to float64; fastfl refuses
    with pytest.raises(ValueError, match="unknown dtype code 10"):
        comm.dtype_flab2torch(10)


def test_empty_package_header():
    p = Package()
    assert p.header.dtype == torch.int32
    assert p.header.tolist() == [-1, -1, 0, 0, -1]
    assert p.slices == [] and p.content is None and p.dtype is None


@pytest.mark.parametrize(("code", "value"), [(None, 0), (MessageCode.Exit, 4), (3, 3)])
def test_message_code_forms(code, value):
    assert Package(code).header[comm.HEADER_MESSAGE_CODE_IDX] == value


@pytest.mark.parametrize("code", ["2", 2.0, True])
def test_message_code_rejects_other_types(code):
    with pytest.raises(TypeError, match="message_code can only be MessageCode or integer"):
        Package(code)


def test_slices_follow_fedlab_records():
    p = Package(MessageCode.ParameterUpdate, [torch.zeros(2), torch.zeros(3, 4), torch.tensor(1.0)])
    assert p.slices == [2, 1, 2, 12, 2, 3, 4, 1, 0]
    assert p.header[comm.HEADER_SLICE_SIZE_IDX] == len(p.slices)
    assert p.dtype == torch.float32


def test_content_is_the_flat_concatenation_and_a_copy():
    a, b = torch.arange(3.0), torch.arange(4.0).view(2, 2)
    p = Package(0, [a, b])
    expected = torch.cat([a, b.view(-1)])
    assert torch.equal(p.content, expected)
    a.add_(100)  # the package copied at append time, as FedLab's does
    assert torch.equal(p.content, expected)


def test_append_one_by_one_equals_list():
    ts = [torch.randn(5), torch.randn(2, 3), torch.randn(1)]
    p = Package()
    for t in ts:
        p.append_tensor(t)
    q = Package(0, ts)
    assert p.slices == q.slices
    assert torch.equal(p.content, q.content)
    assert all(torch.equal(x, y) for x, y in zip(p.tensors, ts, strict=True))


def test_many_appends_grow_the_buffer():
    ts = [torch.full((i + 1,), float(i)) for i in range(200)]
    p = Package()
    for t in ts:
        p.append_tensor(t)
    assert all(torch.equal(x, y) for x, y in zip(p.tensors, ts, strict=True))


def test_mixed_dtypes_keep_their_dtypes():
    ts = [
        torch.arange(3, dtype=torch.int8),
        torch.randn(2, dtype=torch.float64),
        torch.ones(2, dtype=torch.bool),
    ]
    p = Package(0, ts)
    out = p.tensors
    assert [t.dtype for t in out] == [t.dtype for t in ts]
    assert all(torch.equal(x, y) for x, y in zip(out, ts, strict=True))
    with pytest.raises(TypeError, match="content is defined for one dtype only"):
        _ = p.content


def test_non_contiguous_tensor_is_accepted():
    t = torch.arange(12.0).view(3, 4).t()
    p = Package(0, t)
    assert torch.equal(p.tensors[0], t)


def test_tuple_content_is_packed_not_ignored():
    p = Package(0, (torch.ones(2), torch.zeros(1)))  # FedLab silently drops tuples (B19)
    assert p.slices == [2, 1, 2, 1, 1, 1]


@pytest.mark.parametrize("content", [{"a": torch.ones(1)}, 3.0, "x"])
def test_other_content_types_raise(content):
    with pytest.raises(TypeError, match="content must be a tensor"):
        Package(0, content)


def test_non_tensor_in_list_raises_naming_it():
    with pytest.raises(TypeError, match=r"expecting torch\.Tensor but get int"):
        Package(0, [torch.ones(1), 3])
    with pytest.raises(TypeError, match=r"expecting torch\.Tensor but get list"):
        Package().append_tensor([1, 2])


def test_unsupported_dtype_raises():
    with pytest.raises(TypeError, match=r"content\[0\].*complex64"):
        Package(0, [torch.ones(2, dtype=torch.complex64)])


def test_to_converts_the_content():
    p = Package(0, [torch.tensor([1.5, 2.5]), torch.tensor([3, 4])])
    p.to(torch.float64)
    assert p.dtype == torch.float64
    assert p.content.dtype == torch.float64
    assert p.content.tolist() == [1.5, 2.5, 3.0, 4.0]
    assert p.slices == [2, 1, 2, 2, 1, 2]


def test_to_on_empty_package_is_a_no_op():
    p = Package()
    assert p.to(torch.float16) is p
    assert p.dtype is None


def test_to_rejects_unsupported_dtype():
    p = Package(0, torch.ones(2))
    with pytest.raises(TypeError, match="complex64"):
        p.to(torch.complex64)
    assert p.dtype == torch.float32


def test_wire_dtype_narrows_only_floats():
    p = Package(0, [torch.randn(4), torch.arange(3)], wire_dtype=torch.bfloat16)
    assert [t.dtype for t in p.tensors] == [torch.bfloat16, torch.int64]
    assert p.nbytes == 4 * 2 + 3 * 8
    with pytest.raises(TypeError, match="wire_dtype"):
        Package(wire_dtype=torch.int8)


def test_parse_content_returns_shaped_views():
    content = torch.arange(10.0)
    out = Package.parse_content([4, 2, 2, 2, 5, 1, 5, 1, 0], content)
    assert [tuple(t.shape) for t in out] == [(2, 2), (5,), ()]
    assert out[1].data_ptr() == content[4:].data_ptr()


@pytest.mark.parametrize(
    ("slices", "match"),
    [
        ([4, 2, 2], "does not hold|bad slice"),
        ([3, 1, 2], "does not hold"),
        ([-1, 0], "bad slice"),
        ([5], "end inside a record"),
        ([4, 1, 4, 99], "does not match|end inside"),
    ],
)
def test_parse_content_rejects_bad_slices(slices, match):
    with pytest.raises(WireFormatError, match=match):
        Package.parse_content(slices, torch.arange(4.0))


def test_parse_header():
    header = torch.tensor([3, 0, 6, 2, 5], dtype=torch.int32)
    assert Package.parse_header(header) == (3, 0, 6, MessageCode.ParameterUpdate, 5)
    with pytest.raises(WireFormatError, match="unknown message code 42 from rank 3"):
        Package.parse_header(torch.tensor([3, 0, 6, 42, 5], dtype=torch.int32))
    with pytest.raises(WireFormatError, match="5 integers"):
        Package.parse_header(torch.zeros(4, dtype=torch.int32))


def test_errors_are_fastfl_errors():
    with pytest.raises(FastFLError):
        Package(0, "x")


@pytest.mark.parametrize("n", [10, 100_000], ids=["inline", "two-transfers"])
def test_one_package_sent_to_many_ranks_is_packed_once(monkeypatch, n):
    from fastfl.core.communicator import wire

    package = Package(MessageCode.ParameterUpdate, [torch.arange(float(n)), torch.ones(3, dtype=torch.int64)])
    tables = []
    real = wire.encode_table
    monkeypatch.setattr(wire, "encode_table", lambda *a: tables.append(1) or real(*a))
    bodies = []
    for dst in (1, 2, 3, 1):
        parts = package.wire_parts(0, dst)
        assert wire.decode_header(parts[0].numpy()[: wire.HEADER_BYTES]).receiver == dst
        bodies.append(parts[-1].data_ptr())
    assert len(tables) == 1  # the table was written once
    assert len(set(bodies)) == 1  # every send goes out from the same packed bytes: no copy

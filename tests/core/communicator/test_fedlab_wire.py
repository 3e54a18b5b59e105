from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from fastfl.core.communicator import Package, transport
from fastfl.core.communicator.fedlab_wire import fedlab_parts, parse_slices, recv_fedlab
from fastfl.errors import WireFormatError
from fastfl.utils import MessageCode


@pytest.fixture
def rank0(monkeypatch):
    """FedLab's format writes this process's rank into the header; pretend to be rank 0."""
    monkeypatch.setattr(dist, "get_rank", lambda: 0)


def test_parts_follow_fedlab_worked_example(rank0):
    d = 7
    package = Package(MessageCode.ParameterUpdate, [torch.zeros(2), torch.ones(d)])
    header, slices, content = fedlab_parts(package, 3)
    assert header.dtype == torch.int32 and header.tolist() == [0, 3, 6, 2, 5]
    assert slices.dtype == torch.int32 and slices.tolist() == [2, 1, 2, d, 1, d]
    assert content.dtype == torch.float32 and content.numel() == 2 + d


def test_setup_message_example(rank0):
    header, slices, content = fedlab_parts(
        Package(MessageCode.SetUp, torch.tensor([4], dtype=torch.int32)), 0
    )
    assert header.tolist() == [0, 0, 3, 5, 2] and slices.tolist() == [1, 1, 1] and content.tolist() == [4]


def test_empty_package_is_one_header(rank0):
    (header,) = fedlab_parts(Package(MessageCode.Exit), 2)
    assert header.tolist() == [0, 2, 0, 4, -1]


def test_refuses_dtypes_fedlab_lacks(rank0):
    with pytest.raises(WireFormatError, match=r"cannot carry torch\.bfloat16"):
        fedlab_parts(Package(0, torch.ones(2, dtype=torch.bfloat16)), 1)


def test_refuses_mixed_dtypes(rank0):
    with pytest.raises(TypeError, match="one dtype only"):
        fedlab_parts(Package(0, [torch.ones(2), torch.ones(2, dtype=torch.int64)]), 1)


def test_parse_slices_records():
    assert parse_slices([12, 2, 3, 4, 1, 0, 0, 1, 0]) == [(12, (3, 4)), (1, ()), (0, (0,))]
    with pytest.raises(WireFormatError, match="bad slice record"):
        parse_slices([1, 99] + [1] * 99)


@pytest.mark.parametrize("n", [7, 1_200_000], ids=["small", "large"])  # large: fastfl.ops.empty memory
def test_received_content_round_trips_and_is_not_reused_while_held(rank0, monkeypatch, n):
    parts: list[torch.Tensor] = []

    def recv(buf: torch.Tensor, src: int | None, timeout: float, what: str) -> int:
        buf.copy_(parts.pop(0))
        return 1

    monkeypatch.setattr(transport, "recv", recv)
    received = []
    for value in (1.0, 2.0, 3.0):
        package = Package(
            MessageCode.ParameterUpdate, [torch.full((n,), value), torch.arange(6.0).view(2, 3)]
        )
        parts.extend(p.clone() for p in fedlab_parts(package, 0))
        sender, code, tensors = recv_fedlab(1, 5.0, 1 << 30)
        assert (sender, code) == (1, MessageCode.ParameterUpdate)
        assert tensors[1].shape == (2, 3) and torch.equal(tensors[1], torch.arange(6.0).view(2, 3))
        received.append(tensors[0])
        if value == 2.0:
            del received[0]  # freed memory may come back for the next package; held memory never
    assert [float(t[0]) for t in received] == [2.0, 3.0]
    assert all(bool((t == t[0]).all()) for t in received)

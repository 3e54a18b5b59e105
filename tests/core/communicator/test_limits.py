"""max_tensors: a package of many tiny tensors is refused from its header, before anything is built."""

from __future__ import annotations

import contextlib

import pytest
import torch

from fastfl.core.communicator import Package, PackageProcessor, wire
from fastfl.errors import CommunicationError, FastFLError, WireFormatError
from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks


def _zero_size(n: int) -> Package:
    return Package(MessageCode.ParameterUpdate, [torch.empty(0)] * n)


def test_header_announcing_too_many_tensors_is_refused():
    raw = wire.encode_header(_zero_size(11).wire_header(0, 1))
    assert wire.decode_header(raw, max_tensors=11).count == 11
    with pytest.raises(WireFormatError, match="11 tensors exceeds max_tensors=10"):
        wire.decode_header(raw, max_tensors=10)


def test_default_limit_is_checked():
    raw = wire.encode_header(_zero_size(wire.DEFAULT_MAX_TENSORS + 1).wire_header(0, 1))
    with pytest.raises(WireFormatError, match=f"exceeds max_tensors={wire.DEFAULT_MAX_TENSORS}"):
        wire.decode_header(raw)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, None])
def test_max_tensors_must_be_a_positive_integer(value):
    with pytest.raises(FastFLError, match="max_tensors must be a positive integer"):
        PackageProcessor(max_tensors=value)


def _flood(rank: int, world: int, port: int, wire_name: str, limit: int) -> list[str]:
    net = network(rank, world, port)
    net.init_network_connection()
    proc = PackageProcessor(wire=wire_name, timeout=30, max_tensors=limit)
    try:
        if rank == 1:
            proc.send_package(_zero_size(limit), 0)  # at the limit: accepted
            # over it: refused from the header; the body is never received, so rank 0 hangs up
            with contextlib.suppress(CommunicationError):
                proc.send_package(_zero_size(limit + 1), 0)
            return []
        got = proc.receive(1)
        out = [f"{len(got.content)} tensors"]
        with pytest.raises(WireFormatError) as err:
            proc.receive(1)
        return [*out, str(err.value)]
    finally:
        net.close_network_connection()


@pytest.mark.distributed
@pytest.mark.parametrize(
    ("wire_name", "match"),
    [("fastfl", "2001 tensors exceeds max_tensors=2000"), ("fedlab", "max_tensors=2000")],
)
def test_many_zero_size_tensors_over_gloo(free_port, wire_name, match):
    got = run_ranks(_flood, 2, free_port, wire_name, 2000, timeout=90)[0]
    assert got[0] == "2000 tensors"
    assert match in got[1]

"""A package of many tiny tensors: bounded receive memory at the limit, a clear refusal over it."""

from __future__ import annotations

import resource
import time

import pytest
import torch

from fastfl.core.communicator import Package
from fastfl.core.communicator.wire import DEFAULT_MAX_TENSORS
from fastfl.core.server._receiver import Receiver
from fastfl.errors import CommunicationError, WireFormatError
from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]

RSS_BOUND_MIB = 96  # docs/wire.md: about 23 MiB for DEFAULT_MAX_TENSORS zero-size tensors


def _flood(n: int) -> Package:
    return Package(MessageCode.ParameterUpdate, [torch.empty(0)] * n)


def _server_under_flood(rank: int, world: int, port: int):
    net = network(rank, world, port, timeout=60)
    net.init_network_connection()
    if rank == 1:
        net.send_package(_flood(DEFAULT_MAX_TENSORS), 0)  # at the limit: accepted
        try:
            net.send_package(_flood(DEFAULT_MAX_TENSORS + 1), 0)  # refused from its header
            time.sleep(30)  # its body is never taken; rank 0 hangs up first
        except CommunicationError:
            pass
        net.close_network_connection()
        return None
    rx = Receiver(net)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    first = rx.get(50)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    count = len(first.content)
    del first
    try:
        rx.get(50)
        refused = "accepted"
    except WireFormatError as err:
        refused = str(err)
    net.close_network_connection()
    return count, grown_mib, refused


def test_flood_at_the_limit_costs_bounded_memory_and_over_it_a_clear_error(free_port):
    count, grown_mib, refused = run_ranks(_server_under_flood, 2, free_port, timeout=100)[0]
    assert count == DEFAULT_MAX_TENSORS
    assert grown_mib < RSS_BOUND_MIB, f"receiving {count} zero-size tensors grew RSS by {grown_mib:.0f} MiB"
    assert f"exceeds max_tensors={DEFAULT_MAX_TENSORS}" in refused

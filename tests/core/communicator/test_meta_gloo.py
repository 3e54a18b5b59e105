"""Package.meta across real processes over gloo: fastfl's format carries it, FedLab's drops it."""

from __future__ import annotations

import pytest
import torch

from fastfl.core.communicator import Package, PackageProcessor
from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks

pytestmark = pytest.mark.distributed


def _exchange(rank: int, world: int, port: int, wire: str) -> list:
    net = network(rank, world, port)
    net.init_network_connection()
    proc = PackageProcessor(wire=wire, timeout=30)
    try:
        if rank == 1:
            proc.send_package(
                Package(MessageCode.ParameterUpdate, torch.ones(3), meta={"num_samples": 600}), 0
            )
            proc.send_package(Package(MessageCode.Exit, meta={"round": 2, "loss": 0.25}), 0)
            big = Package(MessageCode.ParameterUpdate, torch.arange(5000.0), meta={"num_samples": 7})
            proc.send_package(big, 0)
            proc.send_package(Package(MessageCode.ParameterUpdate, torch.zeros(2)), 0)
            return []
        got = [proc.receive() for _ in range(4)]
        return [(g.sender, int(g.message_code.value), g.meta, g.nbytes) for g in got]
    finally:
        net.close_network_connection()


def test_meta_travels_in_the_fastfl_format(free_port):
    got = run_ranks(_exchange, 2, free_port, "fastfl", timeout=90)[0]
    assert got == [
        (1, 2, {"num_samples": 600}, 12),
        (1, 4, {"round": 2, "loss": 0.25}, 0),
        (1, 2, {"num_samples": 7}, 20000),
        (1, 2, {}, 8),
    ]


def test_fedlab_format_drops_meta(free_port):
    got = run_ranks(_exchange, 2, free_port, "fedlab", timeout=90)[0]
    assert [g[2] for g in got] == [{}, {}, {}, {}]
    assert [g[3] for g in got] == [12, 0, 20000, 8]

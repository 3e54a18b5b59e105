"""DistNetwork between real processes over gloo on 127.0.0.1: dtypes, sizes, any-source, broadcast."""

from __future__ import annotations

import os

import pytest
import torch

from fastfl.core.communicator import Package, supported_torch_dtypes
from fastfl.core.network import DistNetwork
from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks

pytestmark = pytest.mark.distributed


def all_dtypes() -> list[torch.Tensor]:
    out = []
    for i, dt in enumerate(supported_torch_dtypes):
        if dt == torch.bool:
            out.append(torch.tensor([True, False, True]))
        elif dt.is_floating_point:
            out.append(torch.linspace(-3, 3, 12, dtype=torch.float64).to(dt).view(3, 4))
        else:
            out.append(
                torch.arange(-5 + i, 5 + i, dtype=dt)
                if dt != torch.uint8
                else torch.arange(250, 256, dtype=dt)
            )
    return [*out, torch.tensor(3.5), torch.zeros(0, 4), torch.empty(0, dtype=torch.int64)]


def stream(rank: int, i: int) -> list[torch.Tensor]:
    """Message i from `rank`: small ones inline, every fifth one large enough for two transfers."""
    size = 5000 if i % 5 == 0 else 3
    return [torch.tensor([rank, i], dtype=torch.int64), torch.full((size,), float(rank * 1000 + i))]


def _exchange(rank: int, world: int, port: int, big: int) -> dict[str, int]:
    net = network(rank, world, port)
    net.init_network_connection()
    try:
        if rank == 0:
            _server(net, world, big)
        else:
            _client(net, rank, big)
        return {"sent": net.send_volume_intotal, "received": net.recv_volume_intotal}
    finally:
        net.close_network_connection()


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y), (x, y)


def _server(net: DistNetwork, world: int, big: int) -> None:
    sender, code, content = net.recv(1)
    assert (sender, code) == (1, MessageCode.ParameterUpdate)
    _same(content, all_dtypes())
    net.send(content, MessageCode.ParameterUpdate, 1)
    _, _, narrowed = net.recv(1)
    assert narrowed[0].dtype == torch.float32 and torch.equal(
        narrowed[0], torch.tensor([0.5, 1.0 / 3.0]).half().float()
    )
    seen = {r: [] for r in range(1, world)}
    for _ in range(30 * (world - 1)):
        sender, code, content = net.recv()
        assert code == MessageCode.GradientUpdate and int(content[0][0]) == sender
        seen[sender].append(int(content[0][1]))
        _same(content, stream(sender, seen[sender][-1]))
    assert all(v == list(range(30)) for v in seen.values()), seen
    net.broadcast_send([torch.arange(4.0)], MessageCode.ParameterRequest)
    replies = net.broadcast_recv()
    assert [(s, c) for s, c, _ in replies] == [(r, MessageCode.ParameterUpdate) for r in range(1, world)]
    assert all(torch.equal(content[0], torch.arange(4.0) * s) for s, _, content in replies)
    payload = torch.arange(big, dtype=torch.float32)
    net.send(payload, MessageCode.ParameterUpdate, 1)
    assert torch.equal(net.recv(1)[2][0], payload)
    net.send(None, MessageCode.Exit, 1)


def _client(net: DistNetwork, rank: int, big: int) -> None:
    if rank == 1:
        net.send(all_dtypes(), MessageCode.ParameterUpdate, 0)
        _same(net.recv(0)[2], all_dtypes())
        net.wire_dtype = torch.float16
        net.send(torch.tensor([0.5, 1.0 / 3.0]), 0, 0)
        net.wire_dtype = None
    for i in range(30):
        net.send(stream(rank, i), MessageCode.GradientUpdate, 0)
    _, code, content = net.recv(0)
    assert code == MessageCode.ParameterRequest
    net.send(content[0] * rank, MessageCode.ParameterUpdate, 0)
    if rank == 1:
        _, _, content = net.recv(0)
        assert content[0].numel() == big
        net.send(content, MessageCode.ParameterUpdate, 0)
        assert net.recv(0)[1:] == (MessageCode.Exit, None)


def _volumes(world: int, big: int) -> dict[int, dict[str, int]]:
    """Tensor bytes each rank must count (no header, table or padding; nothing subtracted)."""
    dtype_bytes = sum(t.numel() * t.element_size() for t in all_dtypes())
    stream_bytes = sum(sum(t.numel() * t.element_size() for t in stream(0, i)) for i in range(30))
    clients = world - 1
    server_sent = dtype_bytes + 16 * clients + 4 * big
    server_recv = dtype_bytes + 4 + stream_bytes * clients + 16 * clients + 4 * big
    out = {0: {"sent": server_sent, "received": server_recv}}
    for r in range(1, world):
        extra = (dtype_bytes + 4 + 4 * big, dtype_bytes + 4 * big) if r == 1 else (0, 0)
        out[r] = {"sent": stream_bytes + 16 + extra[0], "received": 16 + extra[1]}
    return out


def test_exchange_dtypes_any_source_interleaving_broadcast_and_counters(free_port):
    big = 2_000_000  # 8 MB in CI; the >= 100 MB case is marked slow
    results = run_ranks(_exchange, 3, free_port, big, timeout=120)
    assert results == _volumes(3, big)


@pytest.mark.slow
def test_exchange_over_100_megabytes(free_port):
    big = 27_000_000  # 108 MB of float32 each way
    results = run_ranks(_exchange, 2, free_port, big, timeout=240)
    assert results == _volumes(2, big)


def _env_init(rank: int, world: int, port: int) -> list[int]:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank))
    net = DistNetwork(timeout=30)
    net.init_network_connection()
    try:
        if rank == 0:
            got = sorted(int(net.recv()[2][0]) for _ in range(world - 1))
            net.broadcast_send(None, MessageCode.Exit, dst=list(range(1, world)))
            return got
        net.send(torch.tensor([rank * 10]), MessageCode.SetUp, 0)
        assert net.recv(0)[1] == MessageCode.Exit
        return [net.rank, net.world_size]
    finally:
        net.close_network_connection()


def test_torchrun_style_environment_init(free_port):
    results = run_ranks(_env_init, 3, free_port, timeout=90)
    assert results == {0: [10, 20], 1: [1, 3], 2: [2, 3]}


def _prebuilt(rank: int, world: int, port: int) -> bool:
    net = network(rank, world, port)
    net.init_network_connection()
    try:
        if rank == 0:
            package = Package(MessageCode.ParameterUpdate, [torch.ones(3000), torch.ones(2)])
            for dst in range(1, world):
                net.send_package(package, dst)
            return net.send_volume_intotal == (world - 1) * 3002 * 4
        content = net.recv(0)[2]
        return torch.equal(content[0], torch.ones(3000)) and net.recv_volume_intotal == 3002 * 4
    finally:
        net.close_network_connection()


def test_one_package_sent_to_many(free_port):
    assert run_ranks(_prebuilt, 3, free_port, timeout=90) == {0: True, 1: True, 2: True}

"""Opt-in compressed uplinks: PassiveClientManager(..., compressor=...) against a scripted server."""

from __future__ import annotations

import pytest
import torch

from fastfl.contrib.compressor import CastCompressor, CompressedUplink, TopkCompressor
from fastfl.core.client import PassiveClientManager
from fastfl.errors import KernelTypeError
from fastfl.utils.message_code import MessageCode
from tests.core.communicator.ranks import network, run_ranks

D = 4000


class _DeltaTrainer:
    """One client that uploads a fixed update and its sample count (an update-style uplink)."""

    client_num, type = 1, 0

    def __init__(self):
        self.update = torch.linspace(-1, 1, D)

    def local_process(self, payload):
        self.update = self.update + payload[0]

    @property
    def uplink_package(self):
        return [self.update, torch.tensor([25.0])]


class _SerialTrainer(_DeltaTrainer):
    client_num = 3

    def local_process(self, id_list, payload):
        self.ids = id_list

    @property
    def uplink_package(self):
        return [torch.full((D,), float(i + 1)) * torch.linspace(0, 1, D) for i in self.ids]


def _run(rank: int, world: int, port: int) -> list:
    net = network(rank, world, port)
    if rank == 1:
        PassiveClientManager(net, _DeltaTrainer(), compressor=TopkCompressor(0.01)).run()
        return []
    net.init_network_connection()
    try:
        net.recv(src=1)  # SetUp
        got = []
        for step in range(2):
            net.send([torch.tensor([0.0]), torch.full((D,), float(step))], MessageCode.ParameterUpdate, 1)
            _, code, content, meta = net.recv_message(src=1)
            got.append([code.name, [t.numpy().copy() for t in content], meta])
        net.send(None, MessageCode.Exit, 1)
        net.recv(src=1)  # the exit feedback
        return got
    finally:
        net.close_network_connection()


@pytest.mark.distributed
def test_passive_client_uploads_compressed(free_port):
    got = run_ranks(_run, 2, free_port, timeout=90)[0]
    comp, trainer = TopkCompressor(0.01), _DeltaTrainer()
    for step, (code, (update, counts), meta) in enumerate(got):
        glob = torch.full((D,), float(step))
        trainer.local_process([glob])
        want = comp.decode(comp.encode(trainer.update - glob), (D,), torch.float32)  # the delta travels
        assert code == "ParameterUpdate" and counts.tolist() == [25.0]  # the count travels raw
        assert meta == {"uplink_delta": 1}
        assert torch.equal(torch.from_numpy(update), want)
        assert (update != 0).sum() == 40


def test_serial_uplink_keeps_memory_per_client_id():
    trainer = CompressedUplink(_SerialTrainer(), TopkCompressor(0.1, num_clients=1))
    trainer.local_process(id_list=[4, 1], payload=[])
    items = trainer.uplink_package
    assert [i.codec for i in items] == [2, 2] and trainer.client_num == 3
    memory = trainer.compressor.memory.buffer
    assert memory.shape[0] == 5 and memory[4].any() and memory[1].any() and not memory[0].any()


def test_cast_uplink_and_bad_compressor():
    trainer = CompressedUplink(_DeltaTrainer(), CastCompressor(torch.bfloat16))
    update, counts = trainer.uplink_package
    assert update.dtype == torch.bfloat16 and counts.dtype == torch.float32
    with pytest.raises(KernelTypeError, match="compressor must be"):
        CompressedUplink(_DeltaTrainer(), "topk")

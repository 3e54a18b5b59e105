"""wire="fedlab" against the real FedLab 1.2.1 package as the peer process, over gloo."""

from __future__ import annotations

import pytest
import torch

from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks

pytest.importorskip("fedlab.core.communicator")
pytestmark = pytest.mark.distributed

IDS = torch.tensor([0.0, 3.0])
PARAMS = torch.linspace(-1, 1, 5000)


def _fedlab_peer(port: int) -> list[str]:
    """Rank 1, running FedLab 1.2.1's own DistNetwork and PackageProcessor."""
    from fedlab.core.communicator.processor import PackageProcessor as FedLabProcessor
    from fedlab.core.network import DistNetwork as FedLabNetwork
    from fedlab.utils.message_code import MessageCode as FedLabCode

    net = FedLabNetwork(("127.0.0.1", port), 2, 1)
    net.init_network_connection()
    seen = []
    try:
        net.send(content=[IDS, PARAMS.view(50, 100)], message_code=FedLabCode.ParameterUpdate, dst=0)
        net.send(content=torch.tensor([7], dtype=torch.int32), message_code=FedLabCode.SetUp, dst=0)
        net.send(message_code=FedLabCode.Exit, dst=0)
        sender, code, content = FedLabProcessor.recv_package(src=0)
        seen.append(f"{sender} {code.name} {[tuple(t.shape) for t in content]} {content[0].dtype}")
        assert torch.equal(content[0], PARAMS * 2) and content[1].tolist() == [[1.0, 2.0]]
        assert content[2].shape == () and float(content[2]) == 4.0
        sender, code, content = FedLabProcessor.recv_package(src=0)
        seen.append(f"{sender} {code.name} {content}")
        sender, code, content = FedLabProcessor.recv_package(src=0)
        seen.append(f"{sender} {code.name} {content[0].dtype} {content[0].tolist()}")
    finally:
        net.close_network_connection()
    return seen


def _talk(rank: int, world: int, port: int) -> list[str]:
    if rank == 1:
        return _fedlab_peer(port)
    net = network(rank, world, port, wire="fedlab")
    net.init_network_connection()
    try:
        sender, code, content = net.recv()
        assert (sender, code) == (1, MessageCode.ParameterUpdate)
        assert torch.equal(content[0], IDS) and torch.equal(content[1], PARAMS.view(50, 100))
        sender, code, content = net.recv(1)
        assert code == MessageCode.SetUp and content[0].dtype == torch.int32 and content[0].tolist() == [7]
        assert net.recv(1)[1:] == (MessageCode.Exit, None)
        net.send([PARAMS * 2, torch.tensor([[1.0, 2.0]]), torch.tensor(4.0)], MessageCode.ParameterUpdate, 1)
        net.send(None, MessageCode.Exit, 1)
        net.send(torch.tensor([5, 6], dtype=torch.int64), MessageCode.SetUp, 1)
        try:
            net.send([torch.ones(2), torch.ones(2, dtype=torch.int64)], MessageCode.ParameterUpdate, 1)
        except TypeError as err:
            return [str(err)]
        return ["mixed dtypes were sent"]
    finally:
        net.close_network_connection()


def test_fastfl_and_fedlab_exchange_packages(free_port):
    results = run_ranks(_talk, 2, free_port, timeout=90)
    assert "content is defined for one dtype only" in results[0][0]
    assert results[1] == [
        "0 ParameterUpdate [(5000,), (1, 2), ()] torch.float32",
        "0 Exit None",
        "0 SetUp torch.int64 [5, 6]",
    ]

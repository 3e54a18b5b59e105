"""Process bodies of the real-process manager tests: `python -m tests.core.server._gloo_workers ROLE JSON`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from fastfl.core.client import ActiveClientManager, SGDClientTrainer
from fastfl.core.network import DistNetwork
from fastfl.core.server import AsynchronousServerManager, AsyncParameterServerHandler
from fastfl.utils.message_code import MessageCode

torch.set_num_threads(1)


def _net(a):
    return DistNetwork(("127.0.0.1", a["port"]), a["world"], a["rank"], timeout=60)


class _TimedTrainer(SGDClientTrainer):
    """FedLab's asynchronous example trainer: uploads [params, the model time it trained from]."""

    def local_process(self, payload):
        self.model_time = float(payload[1].item())
        self.train(payload[0])

    @property
    def uplink_package(self):
        return [self.model_parameters, torch.tensor([self.model_time])]


def async_server(a):
    torch.manual_seed(0)
    handler = AsyncParameterServerHandler(nn.Linear(3, 2), alpha=0.5, total_time=a["total_time"])
    manager = AsynchronousServerManager(_net(a), handler)
    manager.run()
    Path(a["out"]).write_text(json.dumps({"time": handler.time, "gone": sorted(manager.gone)}))


def active_client(a):
    g = torch.Generator().manual_seed(a["rank"])
    batches = [(torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(2)]
    model = nn.Linear(3, 2)
    trainer = _TimedTrainer(
        model, batches, 1, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    )
    ActiveClientManager(_net(a), trainer).run()


def dying_client(a):
    """Join, ask for the model, and die before the reply."""
    net = _net(a)
    net.init_network_connection()
    net.send(torch.tensor([1], dtype=torch.int32), MessageCode.SetUp, 0)
    net.send(None, MessageCode.ParameterRequest, 0)
    os._exit(3)


if __name__ == "__main__":
    globals()[sys.argv[1]](json.loads(sys.argv[2]))

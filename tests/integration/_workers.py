"""Process bodies for the multi-process tests: `python -m tests.integration._workers ROLE JSON_ARGS`."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastfl.core._updates import send_with_meta
from fastfl.core.client import (
    ActiveClientManager,
    PassiveClientManager,
    SGDClientTrainer,
    SubsetSerialTrainer,
)
from fastfl.core.network import DistNetwork
from fastfl.core.server import SynchronousServerManager, SyncParameterServerHandler
from fastfl.utils.message_code import MessageCode

torch.set_num_threads(1)
D = 3 * 2 + 2  # parameters of nn.Linear(3, 2)


def _net(a):
    return DistNetwork(("127.0.0.1", a["port"]), a["world"], a["rank"], timeout=a.get("timeout", 60))


def _data():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(40, 3, generator=g), torch.randint(0, 2, (40,), generator=g))


def _sgd_trainer():
    model = nn.Linear(3, 2)
    loader = [(x, y) for x, y in zip(_data().tensors[0].split(10), _data().tensors[1].split(10), strict=True)]
    return SGDClientTrainer(
        model, loader, 1, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    )


def passive(a):
    """A passive client: serial (3 clients) or ordinary trainer."""
    if a["kind"] == "serial":
        trainer = SubsetSerialTrainer(
            nn.Linear(3, 2), _data(), [list(range(i * 10, i * 10 + 10)) for i in range(3)]
        )
    else:
        trainer = _sgd_trainer()
        if a.get("die_at"):
            calls = {"n": 0}
            original = trainer.local_process

            def local_process(payload):
                calls["n"] += 1
                if calls["n"] == a["die_at"]:
                    os.kill(os.getpid(), signal.SIGKILL)
                original(payload)

            trainer.local_process = local_process
    PassiveClientManager(_net(a), trainer).run()


class TimedTrainer:
    """Active-client trainer that uploads [params, time] like FedLab's example (FedAsync's protocol).

    Args:
        inner: the SGDClientTrainer that trains (default: a small linear model on fixed data).
    """

    def __init__(self, inner=None):
        self.inner = inner if inner is not None else _sgd_trainer()
        self.client_num, self.type = 1, 0
        self.time = None

    def local_process(self, payload):
        self.time = float(payload[1].item())
        self.inner.train(payload[0])

    @property
    def uplink_package(self):
        return [self.inner.model_parameters, torch.tensor([self.time])]


def active(a):
    ActiveClientManager(_net(a), TimedTrainer()).run()


def raw_server_passive(a):
    """Script rank 0 against passive clients; record what arrives."""
    net, log = _net(a), {}
    net.init_network_connection()
    log["setup"] = [
        (s, c.name, p[0].dtype.__repr__(), p[0].tolist()) for s, c, p in (net.recv(src=r) for r in (1, 2))
    ]
    params = torch.zeros(D)
    net.send([torch.tensor([0.0, 2.0]), params], MessageCode.ParameterUpdate, 1)
    net.send([torch.tensor([0.0]), params], MessageCode.ParameterUpdate, 2)
    got = {}
    for _ in range(2):
        s, c, p, meta = _recv_with_meta(net)
        got[s] = (c.name, [t.numel() for t in p], meta)
    log["updates"] = got
    for r in (1, 2):
        net.send([torch.tensor([0.0]), params], MessageCode.Exit, r)
    s, c, p = net.recv()
    log["feedback"] = (s, c.name, p)
    net.close_network_connection()
    Path(a["out"]).write_text(json.dumps(log))


def _recv_with_meta(net, src=None):
    """(sender, code, content, meta) through `recv_message` when the network has it (contract C2)."""
    if hasattr(net, "recv_message"):
        m = net.recv_message(src)
        return m.sender, m.message_code, m.content, dict(m.meta)
    s, c, p = net.recv(src)
    return s, c, p, None


def raw_server_active(a):
    """Script rank 0 against one active client: two request/update cycles, then Exit."""
    net, log = _net(a), {"cycle": []}
    net.init_network_connection()
    _, code, content = net.recv(src=1)
    log["setup"] = [code.name, content[0].tolist()]
    for t in (1.0, 5.0):
        _, c, p = net.recv(src=1)
        log["cycle"].append([c.name, p])
        net.send([torch.zeros(D), torch.tensor([t])], MessageCode.ParameterUpdate, 1)
        _, c, p = net.recv(src=1)
        log["cycle"].append([c.name, [x.numel() for x in p], p[1].tolist()])
    _, c, p = net.recv(src=1)
    log["cycle"].append([c.name, p])
    net.send(None, MessageCode.Exit, 1)
    _, c, _ = net.recv(src=1)
    log["feedback"] = c.name
    net.close_network_connection()
    Path(a["out"]).write_text(json.dumps(log))


def raw_client(a):
    """Script a client rank against the real synchronous server; record the downlinks."""
    net, log = _net(a), []
    net.init_network_connection()
    net.send(torch.tensor([a["count"]], dtype=torch.int32), MessageCode.SetUp, 0)
    while True:
        _, code, p = net.recv(src=0)
        log.append([code.name, p[0].dtype.__repr__(), p[0].tolist(), p[1].numel()])
        if code == MessageCode.Exit:
            if a["rank"] == a["world"] - 1:
                net.send(None, MessageCode.Exit, 0)
            break
        k = len(p[0])
        ups = [torch.full((D,), float(a["rank"]))] * k
        meta = {
            "num_samples": a["samples"] * k,
            "num_clients": k,
            **{f"n{i}": a["samples"] for i in range(k)},
        }
        send_with_meta(net, ups, MessageCode.ParameterUpdate, 0, meta if a.get("meta") else None)
    net.close_network_connection()
    Path(a["out"]).write_text(json.dumps(log))


def sync_server(a):
    """The real synchronous server with a Linear(3, 2) model; saves its final parameters."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    handler = SyncParameterServerHandler(
        model, a["rounds"], a["ratio"], weighted=a.get("weighted", False), seed=1
    )
    manager = SynchronousServerManager(
        _net(a), handler, round_timeout=a.get("round_timeout"), on_missing=a.get("on_missing", "finish")
    )
    manager.run()
    state = {
        "params": handler.model_parameters.tolist(),
        "round": handler.round,
        "dead": sorted(manager.dead),
        "late": sorted(manager.late),
    }
    Path(a["out"]).write_text(json.dumps(state))


if __name__ == "__main__":
    globals()[sys.argv[1]](json.loads(sys.argv[2]))

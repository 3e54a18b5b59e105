"""Process bodies of the multi-process migration cases: `python -m tests.compat._mp_worker ROLE JSON_ARGS`.

Each process runs FedLab-1.2.1-style user code (tests/compat/usercode.py) on the package named
by ``lib``; every process of one run uses the same package.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import torch

from tests.compat.usercode import CALLS, build, fedprox_client, mlp

torch.set_num_threads(1)


def _network(ns, a):
    return ns.DistNetwork(("127.0.0.1", a["port"]), a["world"], a["rank"])


def server(a):
    """The tutorial handler under the stock manager (activate_clients overridden) or a custom main_loop."""
    ns = build(a["lib"])
    random.seed(0)
    torch.manual_seed(0)
    handler = ns.TutorialHandler(mlp(), global_round=a["rounds"], sample_ratio=1.0)
    manager_class = ns.LoopServerManager if a["variant"] == "custom_loop" else ns.CountingServerManager
    manager_class(_network(ns, a), handler).run()
    out = {"params": handler.model_parameters.tolist(), "round": handler.round, "calls": dict(CALLS)}
    Path(a["out"]).write_text(json.dumps(out))


def client(a):
    """A FedProx trainer under a client manager with its own setup and main_loop."""
    ns = build(a["lib"])
    trainer = fedprox_client(ns, a["rank"] - 1)
    ns.TutorialClientManager(_network(ns, a), trainer).run()
    Path(a["out"]).write_text(json.dumps({"calls": dict(CALLS)}))


def crashing_client(a):
    """A FedLab-style trainer whose `train` raises: the client's log must name that error first."""
    ns = build("fastfl")
    trainer = fedprox_client(ns, 0)

    def train(model_parameters):
        raise ValueError("user bug in train()")

    trainer.train = train
    ns.TutorialClientManager(_network(ns, a), trainer).run()


def scripted_server(a):
    """Rank 0: take SetUp, activate client 0, then see how the dead client's connection ends."""
    ns = build("fastfl")
    net = ns.DistNetwork(("127.0.0.1", a["port"]), a["world"], 0, timeout=30)
    net.init_network_connection()
    net.recv(src=1)
    net.send([torch.zeros(1), ns.SerializationTool.serialize_model(mlp())], ns.MessageCode.ParameterUpdate, 1)
    try:
        outcome = repr(net.recv(src=1)[1])
    except Exception as err:  # noqa: BLE001 - the outcome is what the test looks at
        outcome = type(err).__name__
    Path(a["out"]).write_text(json.dumps({"outcome": outcome}))


if __name__ == "__main__":
    globals()[sys.argv[1]](json.loads(sys.argv[2]))

"""Process bodies of the cross-process algorithm tests: `python -m tests.contrib.algorithm._workers ROLE JSON`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

from fastfl.contrib.algorithm import get_algorithm
from fastfl.core.client import ActiveClientManager, PassiveClientManager
from fastfl.core.network import DistNetwork
from fastfl.core.server import AsynchronousServerManager, SynchronousServerManager
from tests.contrib.algorithm._quadratic import make_clients

torch.set_num_threads(1)
ARGS = {"epochs": 3, "batch_size": 20, "lr": 0.05, "shuffle": False}


def _net(a: dict) -> DistNetwork:
    return DistNetwork(("127.0.0.1", a["port"]), a["world"], a["rank"], timeout=60)


def _model() -> nn.Module:
    model = nn.Linear(5, 1, bias=False)
    nn.init.zeros_(model.weight)
    return model


def server(a: dict) -> None:
    """The stock synchronous manager with the algorithm's handler; saves the final parameters."""
    algo = get_algorithm(a["algorithm"])
    handler = algo.handler(_model(), a["rounds"], 1.0, seed=0, **algo.handler_kwargs())
    SynchronousServerManager(_net(a), handler).run()
    Path(a["out"]).write_text(json.dumps(handler.model_parameters.tolist()))


def client(a: dict) -> None:
    """A passive client process whose serial trainer holds two of the four clients."""
    algo = get_algorithm(a["algorithm"])
    data, slices, _ = make_clients()
    mine = slices[2 * (a["rank"] - 1) : 2 * a["rank"]]
    trainer = algo.serial_trainer(
        _model(), data, mine, args=dict(ARGS), criterion=nn.MSELoss(), **algo.trainer_kwargs()
    )
    PassiveClientManager(_net(a), trainer).run()


def async_server(a: dict) -> None:
    """The stock asynchronous manager with FedBuff's handler; saves the time and parameters."""
    algo = get_algorithm("fedbuff")
    handler = algo.handler(_model(), a["total_time"], **algo.handler_kwargs(buffer_size=2))
    AsynchronousServerManager(_net(a), handler).run()
    Path(a["out"]).write_text(json.dumps({"time": handler.time, "params": handler.model_parameters.tolist()}))


def async_client(a: dict) -> None:
    """An active client process: FedBuff's one-client trainer over a list of batches."""
    data, slices, _ = make_clients()
    x, y = data.tensors
    s = slices[a["rank"] - 1]
    trainer = get_algorithm("fedbuff").trainer(
        _model(), [(x[s], y[s])], args=dict(ARGS), criterion=nn.MSELoss()
    )
    ActiveClientManager(_net(a), trainer).run()


if __name__ == "__main__":
    globals()[sys.argv[1]](json.loads(sys.argv[2]))

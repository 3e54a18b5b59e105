"""Process bodies of the fault tests: `python -m tests.integration.faults._roles ROLE JSON_ARGS`.

Every role prints one line ``RESULT {json}`` when it ends normally. A role is killed by itself
(SIGKILL, no clean-up: what a crash, the OOM killer or `kill -9` does) at the point its
``die`` argument names: ``{"call": k, "phase": "before" | "after"}`` is the k-th training call,
before it trains or after it trained but before it uploads; ``{"round": k}`` (servers) is the
end of round k.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastfl.core.client import (
    ActiveClientManager,
    PassiveClientManager,
    SGDClientTrainer,
    SubsetSerialTrainer,
)
from fastfl.core.network import DistNetwork
from fastfl.core.server import (
    AsynchronousServerManager,
    AsyncParameterServerHandler,
    SynchronousServerManager,
    SyncParameterServerHandler,
)
from fastfl.core.server.hierarchical import Scheduler
from tests.integration._workers import TimedTrainer

torch.set_num_threads(1)
SERIAL_CLIENTS = 3


def setup_logging() -> None:
    """Warnings and errors of fastfl's loggers to stdout, one line each."""
    fmt = "%(created).3f %(name)s %(levelname)s %(message)s"
    logging.basicConfig(level=logging.WARNING, format=fmt, stream=sys.stdout)


def _die() -> None:
    print(f"{time.time():.3f} DIE", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _net(a: dict, port_key: str = "port", world_key: str = "world", rank_key: str = "rank") -> DistNetwork:
    return DistNetwork(("127.0.0.1", a[port_key]), a[world_key], a[rank_key], timeout=a.get("timeout", 120))


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(60, 3, generator=g), torch.randint(0, 2, (60,), generator=g))


def _trainer(kind: str):
    model = nn.Linear(3, 2)
    if kind == "serial":
        return SubsetSerialTrainer(
            model, _data(), [list(range(i * 20, i * 20 + 20)) for i in range(SERIAL_CLIENTS)]
        )
    x, y = _data().tensors
    loader = list(zip(x.split(20), y.split(20), strict=True))
    return SGDClientTrainer(
        model, loader, 1, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    )


def _arm(trainer, die: dict | None) -> None:
    """Make the trainer kill its process at the training call and phase `die` names."""
    if not die:
        return
    original, calls = trainer.local_process, {"n": 0}

    @functools.wraps(original)  # keeps the signature: the manager looks for an id_list parameter
    def local_process(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == die["call"] and die["phase"] == "before":
            _die()
        result = original(*args, **kwargs)
        if calls["n"] == die["call"] and die["phase"] == "after":
            _die()
        return result

    trainer.local_process = local_process


def _slow(trainer, seconds: float) -> None:
    original = trainer.local_process

    @functools.wraps(original)
    def local_process(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)

    trainer.local_process = local_process


def _report(**fields) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def client(a: dict) -> None:
    """A passive client (sync, serial and hierarchical lower groups)."""
    trainer = _trainer(a.get("kind", "sgd"))
    if a.get("pause"):  # seconds of "training" per round, so that rounds take some time
        _slow(trainer, a["pause"])
    _arm(trainer, a.get("die"))
    try:
        PassiveClientManager(_net(a), trainer).run()
    except Exception as err:
        print(f"{time.time():.3f} FAILED {type(err).__name__}: {err}", flush=True)
        raise
    _report(rank=a["rank"])


def server(a: dict) -> None:
    """The synchronous server (also the top server of a hierarchical run); reports its rounds."""
    torch.manual_seed(0)
    rounds: list[list[int]] = []

    def on_round_end(h):
        rounds.append([h.round, h.last_round_clients])
        print(f"ROUND {h.round} {h.last_round_clients}", flush=True)
        if a.get("die", {}).get("round") == h.round:
            _die()
        if a.get("kill", {}).get("round") == h.round:  # kill another process (a scheduler) here
            print(f"{time.time():.3f} KILL", flush=True)
            os.kill(int(Path(a["kill"]["pidfile"]).read_text()), signal.SIGKILL)

    handler = SyncParameterServerHandler(nn.Linear(3, 2), a["rounds"], 1.0, seed=1, on_round_end=on_round_end)
    manager = SynchronousServerManager(_net(a), handler, **a.get("manager", {}))
    manager.run()
    _report(rounds=rounds, dead=sorted(manager.dead), late=sorted(manager.late))


class _DyingActiveManager(ActiveClientManager):
    """An active client that dies right after its `die["call"]`-th request (before the reply)."""

    def __init__(self, network, trainer, call: int):
        super().__init__(network, trainer)
        self._requests, self._call = 0, call

    def request(self) -> None:
        super().request()
        self._requests += 1
        if self._requests == self._call:
            _die()


def active_client(a: dict) -> None:
    """An active (asynchronous) client; `die` may also name the phase "request"."""
    trainer = TimedTrainer(_trainer("sgd"))
    die = a.get("die")
    if a.get("pause"):
        _slow(trainer, a["pause"])
    if die and die["phase"] == "request":
        manager = _DyingActiveManager(_net(a), trainer, die["call"])
    else:
        _arm(trainer, die)
        manager = ActiveClientManager(_net(a), trainer)
    manager.run()
    _report(rank=a["rank"])


def async_server(a: dict) -> None:
    handler = AsyncParameterServerHandler(nn.Linear(3, 2), alpha=0.5, total_time=a["updates"] + 1)
    AsynchronousServerManager(_net(a), handler).run()
    _report(time=handler.time)


def scheduler(a: dict) -> None:
    """A hierarchical scheduler: client `rank` of the upper group, rank 0 of its lower group."""
    if "pidfile" in a:
        Path(a["pidfile"]).write_text(str(os.getpid()))
    upper = _net(a)
    lower = DistNetwork(("127.0.0.1", a["lower_port"]), a["lower_world"], 0, timeout=a.get("timeout", 120))
    Scheduler(upper, lower).run()
    _report(rank=a["rank"])


if __name__ == "__main__":
    setup_logging()
    globals()[sys.argv[1]](json.loads(sys.argv[2]))

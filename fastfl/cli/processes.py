"""`fastfl run --processes N`: a server and N-1 serial-trainer client ranks over gloo.

The command starts every rank on 127.0.0.1 with `fastfl.launch` (one free port, every process
stopped on failure, timeout or Ctrl-C), or prints the torchrun command lines for several machines.
Each rank builds the same experiment from the same config and seed; client rank r trains a
contiguous block of the clients, so with one client rank the run equals the standalone run.
"""

from __future__ import annotations

import copy
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from fastfl.cli.experiment import Experiment
from fastfl.cli.outputs import RunLog
from fastfl.cli.simulate import MODEL_FILE, evaluate
from fastfl.utils.progress import RoundReporter

__all__ = ["launch_ranks", "run_rank", "torchrun_lines"]


def client_block(clients: int, ranks: int, rank: int) -> tuple[int, int]:
    """(first client, count) of client rank `rank` (1-based) among `ranks` client ranks."""
    base, extra = divmod(clients, ranks)
    first = (rank - 1) * base + min(rank - 1, extra)
    return first, base + (1 if rank - 1 < extra else 0)


def _worker_command(config: Path, folder: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "fastfl", "run", str(config), "--out", str(folder), *extra]


def launch_ranks(config: Path, folder: Path, processes: int, timeout: float, quiet: bool) -> int:
    """Start `processes` ranks of the run whose resolved config is `config`; wait for all."""
    from fastfl.launch import free_port, launch

    port = str(free_port())
    base = ["--world-size", str(processes), "--port", port, "--timeout", str(timeout)]
    if quiet:
        base.append("--quiet")
    commands = [_worker_command(config, folder, [*base, "--rank", str(r)]) for r in range(processes)]
    return launch(commands, timeout=timeout * 2 + 120)


def torchrun_lines(config: Path, processes: int, nodes: int, host: str, port: int) -> list[str]:
    """One torchrun command line per machine (node 0 hosts the server, rank 0)."""
    lines = []
    for node in range(nodes):
        cmd = [
            "torchrun",
            f"--nnodes={nodes}",
            f"--node-rank={node}",
            f"--nproc-per-node={processes}",
            f"--master-addr={host}",
            f"--master-port={port}",
            "-m",
            "fastfl",
            "run",
            str(config),
            "--from-env",
        ]
        lines.append(shlex.join(cmd))
    return lines


def env_rank() -> tuple[int, int, str, int]:
    """(rank, world size, address, port) from torchrun's environment (its agent's store is reused)."""
    try:
        return (
            int(os.environ["RANK"]),
            int(os.environ["WORLD_SIZE"]),
            os.environ["MASTER_ADDR"],
            int(os.environ["MASTER_PORT"]),
        )
    except KeyError as err:
        raise SystemExit(f"--from-env: {err.args[0]} is not set; start this command with torchrun") from err


def run_rank(
    exp: Experiment,
    folder: Path,
    rank: int,
    world: int,
    address: tuple[str, int],
    timeout: float,
    quiet: bool,
) -> int:
    """Run rank `rank` of the experiment: 0 is the server, the others serial-trainer clients."""
    from fastfl.core.client import PassiveClientManager
    from fastfl.core.network import DistNetwork
    from fastfl.core.server import SynchronousServerManager

    network = DistNetwork(address, world, rank, timeout=timeout)
    if rank != 0:
        first, count = client_block(exp.clients, world - 1, rank)
        trainer = exp.trainer(copy.deepcopy(exp.model), first, count)
        PassiveClientManager(network, trainer).run()
        return 0
    cfg = exp.config
    reporter = RoundReporter(
        cfg["run"]["rounds"],
        out=folder / "metrics",
        quiet=quiet,
        title=f"{exp.algorithm.name} on {cfg['data']['name']}, {world} processes",
    )
    log = RunLog(folder, cfg["run"]["tensorboard"])
    clock = {"start": time.perf_counter(), "bytes": 0}

    def on_round_end(handler: Any) -> None:
        run = cfg["run"]
        evaluated = handler.round % run["eval_every"] == 0 or handler.round == run["rounds"]
        loss, acc = evaluate(handler.model, exp.data.test) if evaluated else (float("nan"), float("nan"))
        now = time.perf_counter()
        moved = network.send_volume_intotal + network.recv_volume_intotal  # server <-> clients, this run
        row = {
            "round": handler.round,
            "clients": handler.last_round_clients,
            "loss": loss,
            "accuracy": acc,
            "seconds": now - clock["start"],
            "bytes_sent": moved - clock["bytes"],
        }
        reporter.record(**row)
        log.scalars(row)
        clock["start"], clock["bytes"] = now, moved

    handler = exp.handler()
    handler.on_round_end = on_round_end
    try:
        SynchronousServerManager(network, handler).run()
    finally:
        log.close()
        reporter.close()
    torch.save(handler.model.state_dict(), folder / MODEL_FILE)
    return 0

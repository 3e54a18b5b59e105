"""Fault scenarios as data: which processes a run has, whom to kill where, what must hold after.

A scenario runs every process in its own session with a network timeout (120 s) far above the
test's deadline (45 s), so a run that finishes in time proves that each failure was detected as
an event, not by a timeout.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration._procs import free_port
from tests.integration.faults._harness import orphans, wait_all, worker

NETWORK_TIMEOUT = 120
DEADLINE = 45
ROUNDS = 4
SERIAL = 3  # clients per serial trainer (tests.integration.faults._roles.SERIAL_CLIENTS)


@dataclass
class Proc:
    """One process of a scenario: its role, its arguments, and the name its log line uses."""

    role: str
    args: dict
    name: str
    killed: bool = False


@dataclass
class Outcome:
    """What a scenario's processes did: exit code (None: still running at the deadline) and output."""

    procs: list[Proc]
    codes: list[int | None]
    outputs: list[str]
    left: list[int] = field(default_factory=list)

    def result(self, name: str) -> dict:
        """The RESULT line of process `name`."""
        out = self.outputs[[p.name for p in self.procs].index(name)]
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert lines, f"{name} printed no RESULT:\n{out}"
        return json.loads(lines[-1][len("RESULT ") :])

    def output(self, name: str) -> str:
        return self.outputs[[p.name for p in self.procs].index(name)]

    def check_survivors_ended(self) -> None:
        """Every process that was not killed ended by itself; none left behind."""
        report = "\n".join(
            f"--- {p.name} ({c}):\n{o[-3000:]}"
            for p, c, o in zip(self.procs, self.codes, self.outputs, strict=True)
        )
        stuck = [p.name for p, c in zip(self.procs, self.codes, strict=True) if c is None]
        assert not stuck, f"still running at the deadline: {stuck}\n{report}"
        assert not self.left, f"processes left behind: {self.left}\n{report}"
        for p, c in zip(self.procs, self.codes, strict=True):
            if p.killed:
                assert c == -9, f"{p.name} was meant to be killed at its kill point, exit code {c}\n{report}"


def run(procs: list[Proc], logs: Path, deadline: float = DEADLINE) -> Outcome:
    """Start every process (output to files under `logs`), wait (bounded), and look for orphans."""
    popen = [worker(p.role, {"timeout": NETWORK_TIMEOUT, **p.args}, logs / f"{p.name}.log") for p in procs]
    results = wait_all(popen, deadline)
    left = orphans(popen)
    return Outcome(procs, [c for c, _ in results], [o for _, o in results], left)


def kill_point(
    seed: int, ranks: list[int], rounds: int = ROUNDS, phases: tuple[str, ...] = ("before", "after")
) -> tuple[int, dict]:
    """A seeded random (rank, die) pair: which client dies, at which training call, in which phase.

    The phase cycles with the seed, so any run of consecutive seeds covers every phase.
    """
    rng = random.Random(seed)
    return rng.choice(ranks), {"call": rng.randint(1, rounds), "phase": phases[seed % len(phases)]}


def asynchronous(
    clients: int, updates: int, victim: int | None = None, die: dict | None = None
) -> list[Proc]:
    """An asynchronous run: the server stops after `updates` updates; active clients 1..`clients`."""
    port, world = free_port(), clients + 1
    base = {"port": port, "world": world}
    procs = [Proc("async_server", {**base, "rank": 0, "updates": updates}, "server")]
    for r in range(1, world):
        args = {**base, "rank": r, "pause": 0.05}
        if r == victim:
            args["die"] = die
        procs.append(Proc("active_client", args, f"client{r}", killed=r == victim))
    return procs


def flat(kind: str, clients: int, victim: int | None = None, die: dict | None = None) -> list[Proc]:
    """A synchronous run: server rank 0 and `clients` passive clients of `kind` ("sgd" or "serial")."""
    port, world = free_port(), clients + 1
    base = {"port": port, "world": world}
    procs = [Proc("server", {**base, "rank": 0, "rounds": ROUNDS}, "server")]
    for r in range(1, world):
        args = {**base, "rank": r, "kind": kind}
        if r == victim:
            args["die"] = die
        procs.append(Proc("client", args, f"client{r}", killed=r == victim))
    return procs


def hierarchical(
    tmp_path: Path,
    groups: int = 2,
    victim: tuple[int, int] | None = None,
    die: dict | None = None,
    manager: dict | None = None,
) -> list[Proc]:
    """A top server, `groups` schedulers, two sgd clients under each; `victim` = (group, lower rank).

    Lower rank 0 is the scheduler itself: a victim (g, 0) is killed by the top server at the end
    of round ``die["call"]`` (its process only: its connectors must notice and exit).
    """
    top_port, lower_ports = free_port(), [free_port() for _ in range(groups)]
    top = {"port": top_port, "world": groups + 1, "rank": 0, "rounds": ROUNDS, "manager": manager or {}}
    procs = [Proc("server", top, "top")]
    for g in range(1, groups + 1):
        args = {"port": top_port, "world": groups + 1, "rank": g}
        args.update(lower_port=lower_ports[g - 1], lower_world=3)
        if victim == (g, 0):
            args["pidfile"] = str(tmp_path / f"scheduler{g}.pid")
            top["kill"] = {"round": die["call"], "pidfile": args["pidfile"]}
        procs.append(Proc("scheduler", args, f"scheduler{g}", killed=victim == (g, 0)))
        for r in (1, 2):
            args = {"port": lower_ports[g - 1], "world": 3, "rank": r, "kind": "sgd", "pause": 0.2}
            if victim == (g, r):
                args["die"] = die
            procs.append(Proc("client", args, f"g{g}client{r}", killed=victim == (g, r)))
    return procs


def expected_counts(per_rank: int, ranks: int, die: dict, rounds: int = ROUNDS) -> list[list[int]]:
    """Per round [round, clients aggregated] when one rank of `per_rank` clients dies at `die`."""
    full, short = per_rank * ranks, per_rank * (ranks - 1)
    return [[k, full if k < die["call"] else short] for k in range(1, rounds + 1)]

"""The two simulation workloads of issue 12, shared by the peer scripts (torch only, no fastfl).

A peer script runs inside a peer's own virtual environment (`.peers/NAME`), where fastfl is not
installed, so the workloads are restated here; `bench/bench_peers.py` checks that they match
`bench/bench_round.py`'s cases and data. The script builds one `Runner` (a function that runs
``n`` rounds with the peer's own API and returns each round's seconds) and hands it to `main`,
which speaks a line protocol on stdin/stdout:

- one-shot (default): warm up, time ``--rounds`` rounds, print one JSON line;
- ``--serve``: warm up, print a JSON "ready" line, then for each stdin line ``N`` (the peer) or
  ``floor N`` (the plain-torch floor, in this venv's torch) run N rounds and print one JSON line
  of per-round seconds. EOF ends it. `bench/bench_peers.py` uses this to interleave the peers
  with the in-process cases round by round.

Everything else the peer prints goes to stderr, so stdout carries only the JSON lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

# (clients, per round, samples per client, epochs, batch, hidden layers), as bench/bench_round.py.
CASES = {
    "gemm": (100, 10, 600, 5, 50, [200, 200]),
    "gemm-small": (20, 2, 200, 1, 100, [200, 200]),
    "overhead": (1000, 100, 20, 1, 20, [32]),
    "overhead-small": (100, 100, 20, 1, 20, [32]),
}
LR = 0.02

Runner = Callable[[int], list[float]]


@dataclass
class Workload:
    """One case's generated data and settings (the same tensors as bench_round's `_setup`)."""

    x: torch.Tensor
    y: torch.Tensor
    slices: list[tuple[int, int]]  # each client's [start, end) rows
    per_round: int
    epochs: int
    batch: int
    hidden: list[int]
    lr: float = LR

    @property
    def clients(self) -> int:
        return len(self.slices)


def workload(case: str) -> Workload:
    """Generated data for a case: a random teacher labels Gaussian inputs; client i owns rows i*n..(i+1)*n."""
    clients, per_round, n, epochs, batch, hidden = CASES[case]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(clients * n, 784, generator=g)
    teacher = torch.randn(784, 10, generator=g)
    y = (x @ teacher).argmax(1)
    slices = [(i * n, (i + 1) * n) for i in range(clients)]
    return Workload(x, y, slices, per_round, epochs, batch, hidden)


def mlp(hidden: list[int], cls: type[nn.Sequential] = nn.Sequential) -> nn.Sequential:
    """The MLP 784-hidden-10 with ReLUs, as bench_round's `_mlp` (same layers, same init order)."""
    dims = [784, *hidden, 10]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
    return cls(*layers[:-1])


def timed(round_: Callable[[], object]) -> Runner:
    """A runner from a one-round function: each round timed alone."""

    def run(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            round_()
            out.append(time.perf_counter() - t0)
        return out

    return run


def floor(w: Workload) -> tuple[Runner, nn.Module]:
    """The plain-torch floor: one model, pre-batched tensors, the round's forward/backward/steps."""
    torch.manual_seed(0)
    model = mlp(w.hidden)
    batches = [
        [(w.x[a:b][i : i + w.batch], w.y[a:b][i : i + w.batch]) for i in range(0, b - a, w.batch)]
        for a, b in w.slices[: w.per_round]
    ]
    opt = torch.optim.SGD(model.parameters(), lr=w.lr)
    loss_fn = nn.CrossEntropyLoss()

    def round_() -> None:
        for client in batches:
            for _ in range(w.epochs):
                for xb, yb in client:
                    loss = loss_fn(model(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()

    return timed(round_), model


def check_loss(w: Workload, model: nn.Module) -> float:
    """Cross-entropy of the trained model on the first 2000 samples (finite and < 10, else diverged)."""
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(w.x[:2000]), w.y[:2000]))


def summary(per_round: int, seconds: list[float]) -> dict[str, object]:
    """Best, median and clients/s (by the best round) of per-round seconds."""
    best = min(seconds)
    return {
        "round_s": seconds,
        "best_s": best,
        "median_s": statistics.median(seconds),
        "clients_per_s": per_round / best,
    }


def main(impl: str, versions: dict[str, str], build: Callable[[Workload], tuple[Runner, nn.Module]]) -> None:
    """Parse the command line, build the peer's round and run the one-shot or serve protocol."""
    parser = argparse.ArgumentParser(description=f"issue 12's simulation workloads on {impl}")
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help="answer 'N' / 'floor N' lines on stdin")
    args = parser.parse_args()
    out = sys.stdout
    sys.stdout = sys.stderr  # the peer's own prints and logs must not mix with the JSON lines

    def emit(obj: dict[str, object]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    w = workload(args.case)
    run, model = build(w)
    floor_run, floor_model = floor(w)
    run(args.warmup)
    floor_run(args.warmup)
    head = {
        "impl": impl,
        "case": args.case,
        "versions": {"torch": torch.__version__, **versions},
        "threads": torch.get_num_threads(),
        "clients_per_round": w.per_round,
    }
    if not args.serve:
        seconds = run(args.rounds)
        emit({**head, **summary(w.per_round, seconds), "loss": check_loss(w, model)})
        return
    emit({**head, "ready": True})
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "floor":
            emit({"impl": "floor", "round_s": floor_run(int(words[1])), "loss": check_loss(w, floor_model)})
        else:
            emit({"impl": impl, "round_s": run(int(words[0])), "loss": check_loss(w, model)})

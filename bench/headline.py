"""Issue 12's headline ratios, measured interleaved: every round times each case once, in turn.

On a shared machine the load drifts over seconds; timing the cases of one comparison in turn,
round after round (in a new random order each round, each after a short pause), and taking
per-round ratios keeps a drift, or the previous case's leftovers, from landing on one side only. Prints
a Markdown table: best and median time of each case, and the median of the per-round ratios.

    FASTFL_REQUIRE_NATIVE=1 PYTHONPATH=. .venv/bin/python bench/headline.py [rounds]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import baselines
from conftest import client_updates, tensor_set

from fastfl import ops
from fastfl.utils import Aggregators, SerializationTool

Case = Callable[[], object]

# Pause before each timed case. torch's OpenMP workers spin for a few milliseconds after every
# parallel op (libgomp's default wait policy); without the pause, whatever runs next shares its
# cores with them, and the case timed after `sum` or the `add_` loop looked up to 1.5x slower.
SETTLE_S = 0.02


def _fedavg_cases() -> dict[str, Case]:
    rows = client_updates("resnet18", 10)
    xs, ws = list(rows), [1.0 / 10] * 10
    out, loop = torch.empty(rows.shape[1]), torch.empty(rows.shape[1])
    w = torch.tensor(ws)

    def add_loop():
        loop.zero_()
        for x in xs:
            loop.add_(x, alpha=0.1)

    return {
        "fastfl fresh (FedLab's call)": lambda: Aggregators.fedavg_aggregate(xs, ws),
        "fastfl out=": lambda: Aggregators.fedavg_aggregate(xs, ws, out=out),
        "torch add_ loop, preallocated": add_loop,
        "torch mv, pre-stacked K x N": lambda: torch.mv(rows.t(), w, out=loop),
        "read the inputs once (sum)": rows.sum,
        "FedLab 1.2.1": lambda: baselines.fedavg_aggregate(xs, ws),
    }


def _serialize_cases() -> dict[str, Case]:
    ts = tensor_set("resnet18")
    params, model = ts.params, ts.model
    flat, warm = torch.cat([p.reshape(-1) for p in params]), torch.empty(ts.numel)
    return {
        "fastfl serialize_model, fresh": lambda: SerializationTool.serialize_model(model),
        "fastfl serialize_model, out=": lambda: SerializationTool.serialize_model(model, out=warm),
        "FedLab 1.2.1 cat": lambda: baselines.serialize_model(model),
        "fastfl deserialize_model": lambda: SerializationTool.deserialize_model(model, flat),
        "copy of the same bytes": lambda: warm.copy_(flat),
        "fresh 47 MB, ops.empty + copy": lambda: ops.empty(ts.numel).copy_(flat),
        "fresh 47 MB, torch.empty + copy": lambda: torch.empty(ts.numel).copy_(flat),
    }


GROUPS = {
    "fedavg resnet18 K=10": (_fedavg_cases, "fastfl fresh (FedLab's call)", {"FedLab 1.2.1": 3}),
    "serialize resnet18": (_serialize_cases, "copy of the same bytes", {}),
}


def measure(cases: dict[str, Case], base: str, sparse: dict[str, int], rounds: int) -> list[str]:
    """Time every case once per round (cases in `sparse` only every n-th round); return table rows."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    ratios: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up: first touch, pools, lazy init
        fn()
    for r in range(rounds):
        this: dict[str, float] = {}
        names = list(cases)
        random.Random(r).shuffle(names)  # a new order each round: no case always follows another
        for name in names:
            fn = cases[name]
            if r % sparse.get(name, 1):
                continue
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            fn()
            this[name] = time.perf_counter() - start
            times[name].append(this[name])
        for name, t in this.items():
            ratios[name].append(t / this[base])
    lines = [f"| case | best ms | median ms | median ratio to '{base}' |", "|---|---:|---:|---:|"]
    for name in cases:
        best, med = min(times[name]) * 1e3, statistics.median(times[name]) * 1e3
        lines.append(f"| {name} | {best:.2f} | {med:.2f} | {statistics.median(ratios[name]):.2f} |")
    return lines


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    print(f"backend {ops.backend()}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")
    for group, (make, base, sparse) in GROUPS.items():
        print(f"\n### {group} ({rounds} interleaved rounds)\n")
        print("\n".join(measure(make(), base, sparse, rounds)))
    print(f"\nload after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

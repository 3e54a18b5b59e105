"""Flower interop: FedAvg over K ResNet-18-sized Flower results, fastfl's helper vs Flower's own.

Each result is a ``FitRes`` whose ``Parameters`` hold the 62 ResNet-18 parameter tensors as
``np.save`` bytes (Flower's wire format). Compared:

- ``fastfl``: `fastfl.interop.flower.aggregate_inplace` (arrays read in place from the bytes,
  one compiled weighted-sum pass per layer into one output model);
- ``flower-inplace``: ``flwr.server.strategy.aggregate.aggregate_inplace`` (FedAvg's default);
- ``flower``: ``flwr.server.strategy.aggregate.aggregate`` after ``parameters_to_ndarrays``
  (FedAvg with ``inplace=False``).

Also `fastfl.utils.aggregate_state_dicts` over 10 ResNet-18 state_dicts against the plain torch
expression ``sum(w / total * sd[key])`` per key.

Time: pytest-benchmark (``make bench``; K=100 is marked slow). Peak memory allocated during one
call (tracemalloc) and its time, each method in a fresh process::

    python bench/bench_interop.py --results 100
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import resnet18_shapes

flwr = pytest.importorskip("flwr")

from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy.aggregate import aggregate as flower_aggregate
from flwr.server.strategy.aggregate import aggregate_inplace as flower_aggregate_inplace

from fastfl.interop.flower import aggregate_inplace
from fastfl.utils import aggregate_state_dicts

IMPLS = ["fastfl", "flower-inplace", "flower"]
COUNTS = [10, pytest.param(100, marks=pytest.mark.slow)]


def make_results(k: int) -> list[tuple[None, FitRes]]:
    """K results with ResNet-18's shapes: one random model, scaled differently per client."""
    rng = np.random.default_rng(0)
    base = [rng.standard_normal(s, dtype=np.float32) * 0.05 for s in resnet18_shapes()]
    results = []
    for i in range(k):
        scale = np.float32(1.0 + i / k)
        params = ndarrays_to_parameters([a * scale for a in base])
        results.append((None, FitRes(Status(Code.OK, ""), params, num_examples=10 + i, metrics={})))
    return results


def run_impl(name: str, results: list) -> list[np.ndarray]:
    """One aggregation with the named implementation."""
    if name == "fastfl":
        return aggregate_inplace(results)
    if name == "flower-inplace":
        return flower_aggregate_inplace(results)
    return flower_aggregate([(parameters_to_ndarrays(r.parameters), r.num_examples) for _, r in results])


_CACHE: dict[int, list] = {}


def _results(k: int) -> list:
    if k not in _CACHE:
        _CACHE.clear()
        _CACHE[k] = make_results(k)
    return _CACHE[k]


@pytest.mark.parametrize("k", COUNTS)
@pytest.mark.parametrize("impl", IMPLS)
def bench_flower_fedavg(measure, impl, k):
    results = _results(k)
    nbytes = sum(len(b) for _, r in results for b in r.parameters.tensors)
    expected_first = sum((10 + i) * (1.0 + i / k) for i in range(k)) / sum(10 + i for i in range(k))
    base = parameters_to_ndarrays(results[0][1].parameters)[0]

    def check(out):
        np.testing.assert_allclose(out[0], base * expected_first, rtol=1e-4, atol=1e-6)

    measure(f"flower-fedavg-resnet18-k{k}", lambda: run_impl(impl, results), check, nbytes, impl=impl, k=k)


def _state_dicts(k: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(k)
    base = {f"p{i}": torch.randn(s, generator=gen) * 0.05 for i, s in enumerate(resnet18_shapes())}
    return [{name: t * (1.0 + i / k) for name, t in base.items()} for i in range(k)]


def _torch_state_dict_mean(
    sds: list[dict[str, torch.Tensor]], weights: list[float]
) -> dict[str, torch.Tensor]:
    total = sum(weights)
    return {key: sum(w / total * sd[key] for w, sd in zip(weights, sds, strict=True)) for key in sds[0]}


@pytest.mark.parametrize("impl", ["fastfl", "torch"])
def bench_state_dicts_resnet18_k10(measure, impl):
    sds = _state_dicts(10)
    weights = [float(10 + i) for i in range(10)]
    out = {key: torch.empty_like(t) for key, t in sds[0].items()}
    nbytes = 10 * sum(t.numel() * 4 for t in sds[0].values())
    scale = sum(w * (1.0 + i / 10) for i, w in enumerate(weights)) / sum(weights)

    def run():
        if impl == "fastfl":
            return aggregate_state_dicts(sds, weights, out=out)
        return _torch_state_dict_mean(sds, weights)

    def check(result):
        torch.testing.assert_close(result["p0"], sds[0]["p0"] * scale, rtol=1e-5, atol=1e-6)

    measure("state-dicts-resnet18-k10", run, check, nbytes, impl=impl)


def _measure_one(name: str, k: int) -> tuple[float, float, float]:
    """(seconds, peak MB allocated during the call, inputs in MB) of one call, in this process.

    The time is of a plain call; the memory is of a second call under tracemalloc, which sees
    every numpy buffer (the fastfl path allocates only numpy outputs; the kernel allocates nothing).
    """
    results = make_results(k)
    inputs = sum(len(b) for _, r in results for b in r.parameters.tensors) / 1e6
    run_impl(name, make_results(1))  # warm up imports and the kernel
    start = time.perf_counter()
    out = run_impl(name, results)
    seconds = time.perf_counter() - start
    del out
    tracemalloc.start()
    out = run_impl(name, results)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del out
    return seconds, peak / 1e6, inputs


def main(argv: list[str] | None = None) -> int:
    """Measure every implementation in a fresh process; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100, help="K, the number of client results")
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=IMPLS, help="implementations to measure")
    parser.add_argument("--one", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(*_measure_one(args.one, args.results))
        return 0
    print(f"FedAvg of {args.results} ResNet-18-sized Flower results (11.7 M fp32 each)")
    print(f"{'implementation':<16} {'time (s)':>9} {'peak MB allocated':>18} {'inputs MB':>10}")
    for name in args.impls:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--results", str(args.results), "--one", name]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        seconds, peak, inputs = (float(x) for x in done.stdout.split()[-3:])
        print(f"{name:<16} {seconds:>9.3f} {peak:>18.0f} {inputs:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Each algorithm's standalone round against FedAvg's, on the GEMM-bound workload of bench_round.

One round = sample 10 of 100 clients, train each 5 epochs (600 samples, batch 100) of an MLP
784-200-200-10 (199k parameters), aggregate. The method's own overhead is the ratio of its round
to FedAvg's round: the core `SubsetSerialTrainer` + `SyncParameterServerHandler` ("fedavg-core")
and the contrib FedAvg. Targets: <= 1.15x for FedProx, SCAFFOLD and FedDyn (a proximal or
correction term in the one fused step kernel). Ditto trains twice per client (global copy and
personal model) and q-FedAvg adds one loss pass at the received model, by definition.

As a script, it times the rounds interleaved (each repetition runs every algorithm once, best of
the repetitions kept), so load from other processes hits all of them alike, and prints the
ratios of wall time and of process CPU time:

    python bench/bench_algorithms.py --reps 5
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastfl import ops
from fastfl.contrib.algorithm import get_algorithm
from fastfl.core.client import SubsetSerialTrainer
from fastfl.core.server import SyncParameterServerHandler

CLIENTS, PER_ROUND, SAMPLES, EPOCHS, BATCH, HIDDEN = 100, 10, 600, 5, 100, [200, 200]
ALGORITHMS = {
    "fedavg": {},
    "fedprox": {"mu": 0.01},
    "scaffold": {},
    "feddyn": {"alpha": 0.01},
    "fednova": {},
    "qfedavg": {"q": 1.0},
    "fedavgm": {},
    "fedopt": {},
    "ditto": {},
    "perfedavg": {},
    "fedbuff": {"buffer_size": PER_ROUND},
}


def _mlp() -> nn.Module:
    dims = [784, *HIDDEN, 10]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _data() -> tuple[TensorDataset, list[list[int]], dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(CLIENTS * SAMPLES, 784, generator=g)
    y = (x @ torch.randn(784, 10, generator=g)).argmax(1)
    slices = [list(range(i * SAMPLES, (i + 1) * SAMPLES)) for i in range(CLIENTS)]
    return TensorDataset(x, y), slices, {"epochs": EPOCHS, "batch_size": BATCH, "lr": 0.02}


def core_round(data: TensorDataset, slices: list, args: dict) -> Callable[[], None]:
    """FedAvg with the core trainer and handler."""
    torch.manual_seed(0)
    handler = SyncParameterServerHandler(_mlp(), 10**6, PER_ROUND / CLIENTS, seed=0, weighted=True)
    handler.client_num_in_total = CLIENTS
    trainer = SubsetSerialTrainer(_mlp(), data, slices, args=args, seed=0)

    def round_() -> None:
        trainer.local_process(handler.sample_clients(), handler.downlink_package)
        handler._update_global_model(trainer.uplink_package)

    return round_


def algorithm_round(name: str, data: TensorDataset, slices: list, args: dict) -> Callable[[], None]:
    """One round of a contrib algorithm (FedBuff: PER_ROUND single-client updates, one server step)."""
    algo = get_algorithm(name)
    torch.manual_seed(0)
    hp = ALGORITHMS[name]
    trainer = algo.serial_trainer(_mlp(), data, slices, args=args, seed=0, **algo.trainer_kwargs(**hp))
    if algo.asynchronous:
        handler = algo.handler(_mlp(), 10**6, **algo.handler_kwargs(**hp))
        order = iter(range(10**9))

        def async_round() -> None:
            for _ in range(PER_ROUND):
                trainer.local_process([next(order) % CLIENTS], handler.downlink_package)
                handler._update_global_model(trainer.uplink_package)

        return async_round
    handler = algo.handler(_mlp(), 10**6, PER_ROUND / CLIENTS, seed=0, **algo.handler_kwargs(**hp))
    handler.client_num_in_total = CLIENTS

    def round_() -> None:
        trainer.local_process(handler.sample_clients(), handler.downlink_package)
        handler._update_global_model(trainer.uplink_package)

    return round_


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["fedavg-core", *ALGORITHMS])
def bench_algorithm_round(benchmark, name: str) -> None:
    data, slices, args = _data()
    round_ = (
        core_round(data, slices, args) if name == "fedavg-core" else algorithm_round(name, data, slices, args)
    )
    round_()  # warm-up
    benchmark.group = "algorithm-round-gemm"
    benchmark.pedantic(round_, rounds=3, iterations=1)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions (best kept)")
    parser.add_argument("--only", nargs="*", default=None, help="algorithms to time (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data, slices, cfg = _data()
    names = ["fedavg-core", *(args.only or ALGORITHMS)]
    rounds = {
        n: core_round(data, slices, cfg) if n == "fedavg-core" else algorithm_round(n, data, slices, cfg)
        for n in names
    }
    best = dict.fromkeys(names, float("inf"))
    cpu = dict.fromkeys(names, float("inf"))
    for fn in rounds.values():
        fn()  # warm-up
    for _ in range(args.reps):
        for n, fn in rounds.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[n] = min(cpu[n], time.process_time() - start_cpu)
            best[n] = min(best[n], time.perf_counter() - start)
    print(
        f"CPU: {_cpu_name()}; torch threads {args.threads}; backend {ops.backend()}; best of {args.reps} rounds"
    )
    print("(process CPU time is less sensitive than wall time to other processes on a shared machine)")
    print(
        f"{'algorithm':<12} {'wall s':>7} {'cpu s':>7} {'cpu / fedavg':>13} {'cpu / core':>11} {'wall / fedavg':>14}"
    )
    for n in names:
        print(
            f"{n:<12} {best[n]:7.3f} {cpu[n]:7.3f} {cpu[n] / cpu.get('fedavg', float('nan')):13.2f} "
            f"{cpu[n] / cpu['fedavg-core']:11.2f} {best[n] / best.get('fedavg', float('nan')):14.2f}"
        )
    return best


if __name__ == "__main__":
    main()

"""Standalone FedAvg rounds (GEMM-bound and overhead-bound) and the server's memory in a round.

Compared in one run: fastfl (SubsetSerialTrainer + SyncParameterServerHandler) by default
(`batch_clients="auto"`: it times both modes on its first rounds, which the warm-up covers, and
keeps the faster), forced one client at a time ("fastfl-serial", `batch_clients=None`), forced
batched ("fastfl-vmap", `batch_clients=256`: clients trained together, by the hand-fused step for
these Linear/ReLU models), the default and forced batched with torch.func instead (`fused=False`:
"fastfl-unfused", the default before the fused step, and "fastfl-vmap-unfused"), FedLab 1.2.1's
loop (the real `fedlab` SubsetSerialTrainer and Aggregators when installed, else the same
algorithm: a DataLoader per client, serialize by cat, stacked aggregation) and the compute floor
(the same forward/backward/step on pre-batched tensors, no FL around it).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastfl.core.client import SubsetSerialTrainer
from fastfl.core.server import SyncParameterServerHandler

try:  # the real FedLab 1.2.1 as the baseline
    from fedlab.core.client.serial_trainer import SubsetSerialTrainer as FedLabSerialTrainer
    from fedlab.utils.aggregator import Aggregators as FedLabAggregators
    from fedlab.utils.serialization import SerializationTool as FedLabSerialization
except ImportError:
    FedLabSerialTrainer = None

# (clients, per round, samples per client, epochs, batch, hidden layers). "gemm" and "overhead"
# are the two workloads of issue 12: MLP 784-200-200-10, 10 clients x 5 epochs x 600 samples,
# batch 50; MLP 784-32-10, 100 of 1000 clients x 20 samples.
CASES = {
    "gemm": (100, 10, 600, 5, 50, [200, 200]),
    "gemm-small": (20, 2, 200, 1, 100, [200, 200]),
    "overhead": (1000, 100, 20, 1, 20, [32]),
    "overhead-small": (100, 100, 20, 1, 20, [32]),
}
SLOW = {"gemm", "overhead"}


def _mlp(hidden: list[int]) -> nn.Module:
    dims = [784, *hidden, 10]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _setup(case: str):
    clients, per_round, n, epochs, batch, hidden = CASES[case]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(clients * n, 784, generator=g)
    teacher = torch.randn(784, 10, generator=g)
    y = (x @ teacher).argmax(1)
    slices = [list(range(i * n, (i + 1) * n)) for i in range(clients)]
    args = {"epochs": epochs, "batch_size": batch, "lr": 0.02}
    return TensorDataset(x, y), slices, args, per_round, hidden


# Rounds before timing: the first-touch allocations, and the auto mode's four timed trial rounds.
WARMUP = 5


def _fastfl_round(data, slices, args, per_round, hidden, batch_clients="auto", fused=True):
    torch.manual_seed(0)
    model = _mlp(hidden)
    handler = SyncParameterServerHandler(model, 10**6, per_round / len(slices), seed=0)
    handler.client_num_in_total = len(slices)
    trainer = SubsetSerialTrainer(
        _mlp(hidden), data, slices, args=args, seed=0, batch_clients=batch_clients, fused=fused
    )

    def round_():
        ids = handler.sample_clients()
        trainer.local_process(ids, handler.downlink_package)
        handler._update_global_model(trainer.uplink_package)
        return handler.model

    round_.trainer = trainer
    return round_


def _fedlab_round(data, slices, args, per_round, hidden):
    torch.manual_seed(0)
    model = _mlp(hidden)
    trainer = FedLabSerialTrainer(model, data, {i: list(s) for i, s in enumerate(slices)}, args=args)
    rng = random.Random(0)

    def round_():
        params = FedLabSerialization.serialize_model(model)
        ids = rng.sample(range(len(slices)), per_round)
        updates = trainer.local_process(id_list=ids, payload=[params])
        FedLabSerialization.deserialize_model(model, FedLabAggregators.fedavg_aggregate(updates))
        return model

    return round_


def _floor_round(data, slices, args, per_round, hidden):
    torch.manual_seed(0)
    model = _mlp(hidden)
    x, y = data.tensors
    batches = [
        [
            (x[s][i : i + args["batch_size"]], y[s][i : i + args["batch_size"]])
            for i in range(0, len(s), args["batch_size"])
        ]
        for s in (torch.tensor(sl) for sl in slices[:per_round])
    ]
    opt = torch.optim.SGD(model.parameters(), lr=args["lr"])
    loss_fn = nn.CrossEntropyLoss()

    def round_():
        for client in batches:
            for _ in range(args["epochs"]):
                for xb, yb in client:
                    loss = loss_fn(model(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        return model

    return round_


def _fastfl_vmap_round(data, slices, args, per_round, hidden):
    return _fastfl_round(data, slices, args, per_round, hidden, batch_clients=256)


def _fastfl_serial_round(data, slices, args, per_round, hidden):
    return _fastfl_round(data, slices, args, per_round, hidden, batch_clients=None)


def _fastfl_unfused_round(data, slices, args, per_round, hidden):
    return _fastfl_round(data, slices, args, per_round, hidden, fused=False)


def _fastfl_vmap_unfused_round(data, slices, args, per_round, hidden):
    return _fastfl_round(data, slices, args, per_round, hidden, batch_clients=256, fused=False)


IMPLS = {
    "fastfl": _fastfl_round,
    "fastfl-unfused": _fastfl_unfused_round,
    "fastfl-serial": _fastfl_serial_round,
    "fastfl-vmap": _fastfl_vmap_round,
    "fastfl-vmap-unfused": _fastfl_vmap_unfused_round,
    "fedlab-1.2.1": _fedlab_round,
    "floor": _floor_round,
}


def _params(case: str):
    out = []
    for c in CASES:
        for impl in IMPLS:
            marks = [pytest.mark.slow] if c in SLOW else []
            if impl == "fedlab-1.2.1" and FedLabSerialTrainer is None:
                marks.append(pytest.mark.skip(reason="fedlab is not installed"))
            out.append(pytest.param(c, impl, marks=marks, id=f"{c}-{impl}"))
    return out


@pytest.mark.parametrize(("case", "impl"), _params("round"))
def bench_standalone_round(benchmark, case, impl):
    data, slices, args, per_round, hidden = _setup(case)
    round_ = IMPLS[impl](data, slices, args, per_round, hidden)
    for _ in range(WARMUP):  # first-touch allocations, lazy init, the auto mode's trial rounds
        round_()
    benchmark.group = f"round-{case}"
    mode = getattr(getattr(round_, "trainer", None), "_mode", None)
    if mode is not None:
        benchmark.extra_info["auto_choice"] = "serial" if mode.choice is None else f"vmap-{mode.choice}"
    model = benchmark.pedantic(round_, rounds=3 if case in SLOW else 1, iterations=1)
    benchmark.extra_info["clients_per_round"] = per_round
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["clients_per_s"] = round(per_round / benchmark.stats.stats.min, 1)
    benchmark.extra_info["model_bytes"] = sum(p.numel() * 4 for p in model.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert torch.isfinite(flat).all()
    x, y = data.tensors
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x[:2000]), y[:2000]).item()
    assert loss < 10.0, f"training diverged (loss {loss})"


MEMORY_SCRIPT = r"""
import json, os, sys, torch
from torch import nn
torch.set_num_threads(1)
def cnn():  # FedLab's MNIST CNN: conv 1-32-64 (5x5), fc 3136-512-10
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(), nn.Linear(512, 10))
kind, k = sys.argv[1], int(sys.argv[2])
model = cnn()
n = sum(p.numel() for p in model.parameters())
updates = torch.randn(n)  # one template; each arrival is a fresh tensor, as a network receive makes
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():  # current resident set (the high-water mark ru_maxrss would include import-time peaks)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE
def arrivals():  # a network receive hands over a fresh buffer that is freed after use
    for i in range(k):
        yield [updates + i]
if kind == "fastfl":
    from fastfl.core.server import SyncParameterServerHandler
    h = SyncParameterServerHandler(model, 1, 1.0, seed=0)
    h.client_num_in_total = k
    h.sample_clients(); h.downlink_package
    from fastfl import ops  # compile/load the kernels first (numba's JIT would count otherwise)
    ops.weighted_sum([ops.accumulate_(torch.zeros(8), torch.ones(8), 1.0)], [1.0])
    base = peak = rss()
    for u in arrivals():
        h._update_global_model(u)
        peak = max(peak, rss())
        u.clear()
else:
    from fedlab.core.server.handler import SyncParameterServerHandler
    h = SyncParameterServerHandler(model, 1, 1.0)
    h.client_num_in_total = k
    h.downlink_package
    base = peak = rss()
    for u in arrivals():
        h._update_global_model(u)
        peak = max(peak, rss())
        u.clear()
print(json.dumps({"model_bytes": n * 4, "extra_bytes": peak - base}))
"""


@pytest.mark.parametrize("kind", ["fastfl", "fedlab-1.2.1"])
def bench_server_memory(benchmark, kind, tmp_path):
    if kind != "fastfl" and FedLabSerialTrainer is None:
        pytest.skip("fedlab is not installed")
    script = tmp_path / "mem.py"
    script.write_text(MEMORY_SCRIPT)
    root = str(Path(__file__).resolve().parents[1])

    def run():
        out = subprocess.run(
            [sys.executable, str(script), kind.split("-")[0], "100"],
            capture_output=True,
            text=True,
            # A fixed mmap threshold: glibc otherwise raises it to the size of the first freed update,
            # and the harness's later arrival buffers stay resident on the heap, counted as the server's.
            env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin", "MALLOC_MMAP_THRESHOLD_": "1048576"},
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    benchmark.group = "server-memory"
    result = benchmark.pedantic(run, rounds=1, iterations=1)
    ratio = result["extra_bytes"] / result["model_bytes"]
    benchmark.extra_info.update(result, extra_over_model=round(ratio, 2))
    if kind == "fastfl":
        assert ratio <= 3.0, f"server used {ratio:.2f}x the model size above its baseline"

"""A cross-process synchronous FedAvg round with compressed uplinks: round time and bytes sent.

Three processes on 127.0.0.1 over gloo: the server (SyncParameterServerHandler +
SynchronousServerManager) and two PassiveClientManager clients, one client each, sampled every
round. The model is an MLP 784-1024-1024-10 (1 863 690 float32 parameters, 7.5 MB). A client's
"training" is a fixed, seeded step (``params + 0.01 * randn``) so the figures are the protocol's:
downlink, delta, encode (with error feedback), uplink, decode, adding the global back, FedAvg.

Cases: no compressor, top-k 1 % with error feedback (`TopkCompressor(0.01)`), QSGD s=127
(`QSGDCompressor(s=127)`). Per case: one warm-up round, then ROUNDS timed rounds (median and
minimum round time, from the server's `on_round_end`), and the bytes the clients sent in the
timed rounds (their DistNetwork's `send_volume_intotal`, both clients) and the server sent.

    python bench/bench_compressed_round.py            # prints the table
    pytest bench/bench_compressed_round.py -s         # the same, one case per test
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import socket
import statistics
import sys
import time

import pytest
import torch
from torch import nn

ROUNDS = 5
CASES = ["none", "topk-1%", "qsgd-s127"]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
    )


def _compressor(case: str):
    from fastfl.contrib.compressor import QSGDCompressor, TopkCompressor

    return {"none": None, "topk-1%": TopkCompressor(0.01), "qsgd-s127": QSGDCompressor(s=127, seed=1)}[case]


class _Trainer:
    client_num, type = 1, 0

    def __init__(self, rank: int):
        self.gen = torch.Generator().manual_seed(rank)
        self.params = None

    def local_process(self, payload):
        self.params = payload[0] + 0.01 * torch.randn(payload[0].numel(), generator=self.gen)

    @property
    def uplink_package(self):
        return [self.params]


def _rank(rank: int, port: int, case: str, out) -> None:
    torch.set_num_threads(1)
    from fastfl.core.client import PassiveClientManager
    from fastfl.core.network import DistNetwork
    from fastfl.core.server import SyncParameterServerHandler
    from fastfl.core.server.manager import SynchronousServerManager

    net = DistNetwork(("127.0.0.1", port), 3, rank, timeout=120.0)
    if rank == 0:
        marks: list[tuple[float, int]] = []
        handler = SyncParameterServerHandler(
            _model(),
            ROUNDS + 1,
            1.0,
            seed=0,
            on_round_end=lambda h: marks.append((time.perf_counter(), net.send_volume_intotal)),
        )
        SynchronousServerManager(net, handler, round_timeout=None).run()
        out.put(("server", marks))
    else:
        marks = []
        trainer = _Trainer(rank)
        manager = PassiveClientManager(net, trainer, compressor=_compressor(case))
        inner = manager.synchronize

        def synchronize():
            inner()
            marks.append(net.send_volume_intotal)

        manager.synchronize = synchronize
        manager.run()
        out.put((f"client{rank}", marks))


def run_case(case: str) -> dict:
    """Run one case in three fresh processes; return its figures."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, port, case, out), daemon=True) for r in range(3)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=300) for _ in range(3))
    for p in procs:
        p.join(timeout=60)
    marks = got["server"]
    times = [b[0] - a[0] for a, b in itertools.pairwise(marks)]  # rounds 2..ROUNDS+1
    uplink = sum(c[-1] - c[0] for c in (got["client1"], got["client2"]))  # the timed rounds' uploads
    return {
        "case": case,
        "round_ms_median": 1e3 * statistics.median(times),
        "round_ms_min": 1e3 * min(times),
        "uplink_bytes_per_round": uplink / ROUNDS,
        "downlink_bytes_per_round": (marks[-1][1] - marks[0][1]) / ROUNDS,
    }


def _line(r: dict) -> str:
    return (
        f"| {r['case']} | {r['round_ms_median']:.1f} | {r['round_ms_min']:.1f} | "
        f"{r['uplink_bytes_per_round']:,.0f} | {r['downlink_bytes_per_round']:,.0f} |"
    )


HEADER = "| case | round ms (median) | round ms (min) | uplink bytes / round (2 clients) | downlink bytes / round |\n|---|---|---|---|---|"


@pytest.mark.parametrize("case", CASES)
def bench_compressed_round(case):
    r = run_case(case)
    print("\n" + HEADER + "\n" + _line(r))
    if case != "none":
        assert r["uplink_bytes_per_round"] < 0.3 * 2 * 4 * 1_863_690


if __name__ == "__main__":
    cases = sys.argv[1:] or CASES
    print(HEADER)
    for c in cases:
        print(_line(run_case(c)), flush=True)

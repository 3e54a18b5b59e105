"""Communication benchmarks: packing packages, and send/recv over gloo loopback between two processes.

pack+parse: fastfl's Package (one pass, views on parse) vs FedLab 1.2.1's Package (one torch.cat per
tensor) vs one plain torch.cat, for the model tensor sets and for serial-trainer uplinks of K
serialized models. loopback: round trips between this process (rank 0) and an echo process
(rank 1): raw dist.send/recv of a preallocated buffer, fastfl's PackageProcessor, DistNetwork
packing every message, and FedLab's PackageProcessor, at 1e3 floats (latency) and 1e7 floats
(throughput). bench_loopback_ratio alternates raw and fastfl round trips in one loop, so that the
ratio is measured under the same load (run with -s to see it; also in --benchmark-json extra_info).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import socket
import statistics
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.distributed as dist
from conftest import client_updates, tensor_set
from torch import nn

from fastfl.core.client.serial_trainer import SerialTrainer
from fastfl.core.communicator import Package, reader
from fastfl.core.communicator.buffers import BodyBuffers, HostBlock
from fastfl.core.network import DistNetwork
from fastfl.utils import MessageCode

try:
    from fedlab.core.communicator.package import Package as FedLabPackage
    from fedlab.core.communicator.processor import PackageProcessor as FedLabProcessor
    from fedlab.utils.message_code import MessageCode as FedLabCode
except ImportError:  # the real FedLab is an optional bench dependency
    from baselines import Package as _ReimplementedPackage

    FedLabPackage = FedLabProcessor = FedLabCode = None

PACK_IMPLS = ["fastfl", "fedlab", "torch-cat", "copy"]
UPLINKS = [("cnn", 10), pytest.param("cnn", 50, marks=pytest.mark.slow), ("mlp", 50)]
LOOP_IMPLS = ["raw", "raw-alloc", "fastfl", "fastfl-pack", "fedlab"]
MODES = {name: i + 1 for i, name in enumerate([*LOOP_IMPLS, "alternate"])}
PAIRS = {1_000: 3000, 10_000_000: 60}
WARMUP = 2  # rounds of bench_loopback_ratio not timed (first touch, lazy set-up)
SIZES = [1_000, 10_000_000]


def _fedlab_pack_parse(tensors):
    if FedLabPackage is None:
        p = _ReimplementedPackage()
        p.append_tensor_list(tensors)
        return [p.content[:0], p.content]  # parse is views; the reimplementation times packing only
    p = FedLabPackage(1, tensors)
    return FedLabPackage.parse_content(p.slices, p.content)


def _fastfl_pack_parse(tensors):
    p = Package(1, tensors)
    return reader.unpack(p.body(), p.wire_header(0, 1))


def _torch_pack_parse(tensors):
    flat = torch.cat([t.reshape(-1) for t in tensors])
    return [
        piece.view(t.shape)
        for piece, t in zip(flat.split([t.numel() for t in tensors]), tensors, strict=True)
    ]


def _pack_case(measure, group, impl, tensors):
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    if impl == "copy":
        src = torch.cat([t.reshape(-1) for t in tensors])
        dst = torch.empty_like(src)
        measure(group, lambda: dst.copy_(src), lambda r: None, 2 * nbytes)
        return
    fn = {"fastfl": _fastfl_pack_parse, "fedlab": _fedlab_pack_parse, "torch-cat": _torch_pack_parse}[impl]

    def check(out):
        if impl == "fedlab" and FedLabPackage is None:
            return
        assert all(torch.equal(a, b) for a, b in zip(out, tensors, strict=True))

    measure(group, lambda: fn(tensors), check, 2 * nbytes, tensors=len(tensors))


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet18"])
@pytest.mark.parametrize("impl", PACK_IMPLS)
def bench_pack_parse(measure, impl, name):
    _pack_case(measure, f"pack+parse {name}", impl, tensor_set(name).params)


@pytest.mark.parametrize(("name", "k"), UPLINKS)
@pytest.mark.parametrize("impl", PACK_IMPLS)
def bench_pack_uplink(measure, impl, name, k):
    rows = client_updates(name, k)
    _pack_case(measure, f"uplink {name} K={k}", impl, [rows[i] for i in range(k)])


# ---- loopback: the echo process -------------------------------------------------------------


def _echo(port: int) -> None:
    net = DistNetwork(("127.0.0.1", port), 2, 1, timeout=300)
    net.init_network_connection()
    ctrl = torch.zeros(2, dtype=torch.int64)
    try:
        while True:
            dist.recv(ctrl, 0)
            mode, n = ctrl.tolist()
            if mode == 0:
                return
            _ECHO[mode](net, n)
    finally:
        net.close_network_connection()


def _echo_raw(net, n, alloc=False):
    buf = torch.empty(n)
    while True:
        if alloc:
            buf = torch.empty(n)
        dist.recv(buf, 0)
        if math.isnan(buf[0]):
            return
        dist.send(buf, 0)


def _echo_fastfl(net, n, pack=False):
    reply = Package(MessageCode.ParameterUpdate, torch.zeros(n))
    while True:
        _, code, content = net.processor.recv_package(0)
        if code == MessageCode.Exit:
            return
        if pack:
            net.send(content, MessageCode.ParameterUpdate, 0)
        else:
            del content
            net.processor.send_package(reply, 0)


def _echo_fedlab(net, n):
    reply = FedLabPackage(FedLabCode.ParameterUpdate, torch.zeros(n))
    while True:
        _, code, _content = FedLabProcessor.recv_package(0)
        if code == FedLabCode.Exit:
            return
        FedLabProcessor.send_package(reply, 0)


def _echo_alternate(net, n):
    """Answer raw and fastfl round trips in the order `_alternation` gives, for PAIRS[n] rounds."""
    buf = torch.empty(n)
    reply = Package(MessageCode.ParameterUpdate, torch.zeros(n))
    for r in range(PAIRS[n] + WARMUP):
        for name in _alternation(r):
            if name == "raw":
                dist.recv(buf, 0)
                dist.send(buf, 0)
            else:
                content = net.processor.recv_package(0)[2]
                del content
                net.processor.send_package(reply, 0)


def _alternation(r: int) -> tuple[str, str]:
    """Round r's order of the two cases: raw first in even rounds, fastfl first in odd ones."""
    return ("raw", "fastfl") if r % 2 == 0 else ("fastfl", "raw")


_ECHO = {
    MODES["alternate"]: _echo_alternate,
    MODES["raw"]: _echo_raw,
    MODES["raw-alloc"]: lambda net, n: _echo_raw(net, n, alloc=True),
    MODES["fastfl"]: _echo_fastfl,
    MODES["fastfl-pack"]: lambda net, n: _echo_fastfl(net, n, pack=True),
    MODES["fedlab"]: _echo_fedlab,
}


@pytest.fixture(scope="module")
def peer():
    """This process as rank 0 and an echo process as rank 1, joined over gloo on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = mp.get_context("spawn").Process(target=_echo, args=(port,), daemon=True)
    proc.start()
    net = DistNetwork(("127.0.0.1", port), 2, 0, timeout=300)
    net.init_network_connection()
    try:
        yield net
        dist.send(torch.zeros(2, dtype=torch.int64), 1)
    finally:
        net.close_network_connection()
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()


# ---- loopback: this process's side ------------------------------------------------------------


def _round_trip(net, impl, n):
    """Return (one round trip, stop message) for `impl`."""
    payload = torch.zeros(n)
    if impl in ("raw", "raw-alloc"):
        back = torch.empty(n)

        def rtt():
            dist.send(payload, 1)
            got = torch.empty(n) if impl == "raw-alloc" else back
            dist.recv(got, 1)
            return got

        return rtt, lambda: dist.send(torch.full((n,), float("nan")), 1)
    if impl == "fedlab":
        package = FedLabPackage(FedLabCode.ParameterUpdate, payload)

        def rtt():
            FedLabProcessor.send_package(package, 1)
            return FedLabProcessor.recv_package(1)[2][0]

        return rtt, lambda: FedLabProcessor.send_package(FedLabPackage(FedLabCode.Exit), 1)
    package = Package(MessageCode.ParameterUpdate, payload)

    def rtt():
        if impl == "fastfl-pack":
            net.send(payload, MessageCode.ParameterUpdate, 1)
            return net.recv(1)[2][0]
        net.processor.send_package(package, 1)
        return net.processor.recv_package(1)[2][0]

    return rtt, lambda: net.send(None, MessageCode.Exit, 1)


@pytest.mark.parametrize("n", SIZES, ids=["1e3", "1e7"])
@pytest.mark.parametrize("impl", LOOP_IMPLS)
def bench_loopback(measure, peer, impl, n):
    if impl == "fedlab" and FedLabPackage is None:
        pytest.skip("the fedlab package is not installed")
    dist.send(torch.tensor([MODES[impl], n]), 1)
    rtt, stop = _round_trip(peer, impl, n)

    def check(got):
        assert got.shape == (n,) and got.dtype == torch.float32
        assert not bool(got.any())

    try:
        measure(f"loopback round trip {n:.0e} floats", rtt, check, 2 * 4 * n, floats=n)
    finally:
        stop()


@pytest.mark.parametrize("n", SIZES, ids=["1e3", "1e7"])
def bench_loopback_ratio(benchmark, peer, n):
    """Raw and fastfl round trips in turn (the order alternating each round): the ratio under one load.

    Reports each side's best and median and the median of the per-round ratios fastfl / raw (the
    throughput ratio raw / fastfl is its inverse).
    """
    dist.send(torch.tensor([MODES["alternate"], n]), 1)
    payload, back = torch.zeros(n), torch.empty(n)
    package = Package(MessageCode.ParameterUpdate, payload)
    times: dict[str, list[float]] = {"raw": [], "fastfl": []}

    def raw() -> None:
        dist.send(payload, 1)
        dist.recv(back, 1)

    def ours() -> None:
        peer.processor.send_package(package, 1)
        got = peer.processor.recv_package(1)[2][0]
        assert got.shape == (n,)

    cases = {"raw": raw, "fastfl": ours}

    def loop() -> None:
        for r in range(PAIRS[n] + WARMUP):
            for name in _alternation(r):
                t0 = time.perf_counter()
                cases[name]()
                if r >= WARMUP:
                    times[name].append(time.perf_counter() - t0)

    benchmark.group = f"loopback ratio {n:.0e} floats"
    benchmark.pedantic(loop, rounds=1, iterations=1)
    raw_t, ours_t = times["raw"], times["fastfl"]
    ratios = [b / a for a, b in zip(raw_t, ours_t, strict=True)]
    info = {
        "raw_min_us": min(raw_t) * 1e6,
        "raw_median_us": statistics.median(raw_t) * 1e6,
        "fastfl_min_us": min(ours_t) * 1e6,
        "fastfl_median_us": statistics.median(ours_t) * 1e6,
        "ratio_min": min(ours_t) / min(raw_t),
        "ratio_median_per_round": statistics.median(ratios),
    }
    info["throughput_vs_raw"] = 1.0 / info["ratio_median_per_round"]
    benchmark.extra_info.update(info)
    print(
        f"\nloopback {n:.0e} floats, {PAIRS[n]} rounds, load {os.getloadavg()[0]:.1f}: "
        + ", ".join(f"{k} {v:.3g}" for k, v in info.items())
    )


# ---- fresh vs warm buffers: receive bodies and serial-trainer rows ----------------------------------

FRESH_ROUNDS = 20


def _fresh_buffer_cases(n: int) -> dict[str, Callable[[], object]]:
    """Each case writes n bytes (float32 values) into a buffer; 'fresh' ones need a new buffer
    each time (the caller keeps the last two, as a server keeps uplinks or user code keeps
    `param_list`), 'reused' ones get the last one back."""
    src = torch.ones(n // 4)
    warm = torch.empty(n // 4).copy_(src)
    bodies = BodyBuffers()
    trainer = _RowTrainer(nn.Linear(1, 1), client_num=2)
    held: list[object] = []

    def keep(t: object) -> object:
        held.append(t)
        del held[:-2]
        return t

    def body(hold: bool) -> Callable[[], object]:
        def receive() -> object:
            block = bodies.take(n)
            block.whole[:n].view(torch.float32).copy_(src)  # what the transfer writes
            got = block.tensor(n)
            return keep(got) if hold else got

        return receive

    def rows(hold: bool) -> Callable[[], object]:
        def fill() -> object:
            out = trainer._row_buffer(2, n // 8)  # 2 float32 rows, n bytes in all
            out.view(-1).copy_(src)
            return keep(out) if hold else out

        return fill

    def fresh_numpy() -> object:
        return torch.from_numpy(np.empty(n, np.uint8)).view(torch.float32).copy_(src)

    def package(hold: bool) -> Callable[[], object]:
        def pack() -> object:
            p = Package(MessageCode.ParameterUpdate, src)  # packs src into the package's buffer
            return keep(p) if hold else p

        return pack

    return {
        "write into a warm buffer": lambda: warm.copy_(src),
        "new Package (pack), caller holds the last 2 (fresh)": package(True),
        "new Package (pack), caller drops it (pooled)": package(False),
        "receive body, caller holds the last 2 (fresh)": body(True),
        "receive body, caller drops it (reused)": body(False),
        "HostBlock fresh + write": lambda: HostBlock(n).whole.view(torch.float32).copy_(src),
        "np.empty fresh + write (HostBlock before)": fresh_numpy,
        "trainer rows, caller holds the last 2 rounds (fresh)": rows(True),
        "trainer rows, caller drops them (reused)": rows(False),
    }


class _RowTrainer(SerialTrainer):
    """A SerialTrainer used only for its row buffers."""


@pytest.mark.parametrize("n", [47 << 20], ids=["47MB"])
def bench_fresh_buffers(benchmark, n):
    """Fresh receive bodies and trainer rows against a write into a warm buffer, interleaved."""
    from headline import measure as interleave

    cases = _fresh_buffer_cases(n)
    lines: list[str] = []
    benchmark.group = f"fresh buffers {n >> 20} MiB"
    benchmark.pedantic(
        lambda: lines.extend(interleave(cases, "write into a warm buffer", {}, FRESH_ROUNDS)),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info["table"] = lines
    print(f"\nfresh buffers, {n} bytes, {FRESH_ROUNDS} interleaved rounds, load {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))

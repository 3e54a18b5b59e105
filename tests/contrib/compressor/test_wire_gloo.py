"""Every codec through a real gloo exchange (contract C5: EncodedTensor in a package's content).

The receiver gets the decoded tensors, and the bytes on the wire are the compressed sizes.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from fastfl.contrib.compressor import (
    CastCompressor,
    DGCCompressor,
    QSGDCompressor,
    RandomKCompressor,
    TopkCompressor,
)
from fastfl.core.communicator import Package, PackageProcessor
from fastfl.core.communicator.codecs import EncodedTensor, get_codec
from tests.core.communicator.ranks import network, run_ranks

N = 10_000
SHAPE = (100, 100)


def _compressors():
    """Fresh, seeded compressors: the sender and the receiver's check build the same ones."""
    return [
        QSGDCompressor(s=127, seed=1),
        QSGDCompressor(s=3, seed=2),
        TopkCompressor(0.01),
        TopkCompressor(0.01, value_dtype=torch.float16),
        RandomKCompressor(0.01, seed=3),
        DGCCompressor(0.001, warmup_epochs=0),
        CastCompressor(torch.bfloat16),
    ]


# Bytes on the wire per item: header 16 + codes, or 16 + int32 indices + values; the cast is 2 N.
WIRE_BYTES = [
    16 + N,
    16 + (3 * N + 7) // 8,
    16 + 400 + 400,
    16 + 400 + 200,
    16 + 400 + 400,
    16 + 40 + 40,
    2 * N,
]


def _updates() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(SHAPE, generator=gen) for _ in range(2)]


def _arrived(received) -> tuple:
    """What rank 0 got: dtypes as sent, values widened to float32 numpy copies (tensors would
    travel back through shared memory that dies with the rank), bytes on the wire, metadata."""
    dtypes = [str(t.dtype) for t in received.content]
    widen = CastCompressor(torch.bfloat16).decode  # the receiver's side of the cast
    values = [widen(t, SHAPE, torch.float32).numpy().copy() for t in received.content]
    return dtypes, values, received.nbytes, received.meta


def _exchange(rank: int, world: int, port: int) -> list:
    net = network(rank, world, port)
    net.init_network_connection()
    proc = PackageProcessor(timeout=30)
    try:
        if rank == 1:
            comps = _compressors()
            for step, x in enumerate(_updates()):  # two rounds: error feedback and DGC state carry over
                items = [c.encode_tensor(x, client=5) for c in comps]
                assert all(isinstance(i, EncodedTensor) for i in items[:-1])
                proc.send_package(Package(2, items, meta={"step": step}), 0)
            return []
        return [_arrived(proc.receive(1)) for _ in range(2)]
    finally:
        net.close_network_connection()


@pytest.mark.distributed
def test_every_codec_round_trips_over_gloo(free_port):
    rounds = run_ranks(_exchange, 2, free_port, timeout=90)[0]
    comps = _compressors()
    for step, (x, (dtypes, content, nbytes, meta)) in enumerate(zip(_updates(), rounds, strict=True)):
        assert meta == {"step": step}
        assert dtypes == ["torch.float32"] * 6 + ["torch.bfloat16"]  # codecs decode; the cast stays narrow
        assert nbytes == sum(WIRE_BYTES) < len(comps) * 4 * N / 3
        content = [torch.from_numpy(a) for a in content]
        for comp, got in zip(comps, content, strict=True):
            want = comp.decode(comp.encode(x, client=5), SHAPE, torch.float32)
            assert got.shape == SHAPE and torch.equal(got, want), type(comp).__name__
        assert torch.count_nonzero(content[2]) == 100  # top-k kept 1 %


def test_codecs_are_registered_by_name_and_code():
    assert get_codec("qsgd").code == 1 and get_codec(1).name == "qsgd"
    assert get_codec("sparse").code == 2 and get_codec(2).name == "sparse"
    x = torch.randn(40)
    for codec in (get_codec(1), get_codec(2)):
        assert codec.decode(codec.encode(x), (40,), torch.float32).shape == (40,)


def test_a_receiver_finds_the_codecs_without_importing_the_compressors():
    code = (
        "import sys; from fastfl.core.communicator.codecs import get_codec; "
        "assert 'fastfl.contrib.compressor' not in sys.modules; "
        "print(get_codec(1).name, get_codec(2).name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["qsgd", "sparse"]

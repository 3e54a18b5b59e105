"""Top-k and random-k with error feedback (Stich et al. 2018), and FedLab 1.3's top-k, fixed."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfl.contrib.compressor import RandomKCompressor, TopkCompressor
from fastfl.contrib.compressor.base import keep_count
from fastfl.contrib.compressor.sparse import sample_indices
from fastfl.errors import KernelArgumentError
from fastfl.ops import compress as kc


def _dyadic(n: int, gen: torch.Generator) -> torch.Tensor:
    """Multiples of 2^-10 below 2^20: every float64 sum of a few hundred of them is exact."""
    return torch.randint(-(2**20), 2**20, (n,), generator=gen).double() / 1024


@pytest.mark.parametrize(
    "make",
    [lambda: TopkCompressor(0.05, num_clients=2), lambda: RandomKCompressor(0.05, seed=1, num_clients=2)],
    ids=["topk", "randomk"],
)
def test_sent_plus_memory_equals_inputs_exactly(make):
    comp, gen, n = make(), torch.Generator().manual_seed(0), 997
    sums = {c: torch.zeros(n, dtype=torch.float64) for c in (0, 3)}
    sent = {c: torch.zeros(n, dtype=torch.float64) for c in (0, 3)}
    for step in range(60):
        client = 0 if step % 3 else 3  # interleaved clients, each with its own memory row
        g = _dyadic(n, gen)
        sums[client] += g
        sent[client] += comp.decode(comp.encode(g, client), (n,), torch.float64)
    buf = comp.memory.buffer
    assert buf.shape == (4, n)  # grown from 2 rows when client 3 arrived
    for c in (0, 3):
        assert torch.equal(sent[c] + buf[c], sums[c])
        assert buf[c].any()  # something was held back (the test can fail)


def test_without_error_feedback_the_rest_is_lost():
    comp, g = TopkCompressor(0.1, error_feedback=False), torch.randn(100, dtype=torch.float64)
    out = comp.decode(comp.encode(g), (100,), torch.float64)
    assert comp.memory.buffer is None and not torch.equal(out, g)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), frac=st.floats(0.001, 1.0), seed=st.integers(0, 2**31 - 1))
def test_topk_contraction(n, frac, seed):
    x = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    comp = TopkCompressor(frac, error_feedback=False)
    kept = comp.decode(comp.encode(x), (n,), torch.float64)
    k = int((kept != 0).sum())
    assert float(((x - kept) ** 2).sum()) <= (1 - k / n) * float((x**2).sum()) * (1 + 1e-12)


def test_topk_keeps_the_largest_magnitudes():
    x = torch.randn(5000)
    _, vals = kc.topk(x, 50)
    assert torch.equal(vals.abs().sort().values, x.abs().topk(50).values.sort().values)


def test_randomk_unbiased_scaling():
    x = torch.randn(200, dtype=torch.float64)
    comp = RandomKCompressor(0.25, error_feedback=False, unbiased=True, seed=5)
    mean = torch.stack([comp.decode(comp.encode(x), (200,), torch.float64) for _ in range(4000)]).mean(0)
    # Var of each coordinate's mean: x_i^2 (d/k - 1) / draws = 3 x_i^2 / 4000
    assert float(((mean - x) ** 2).sum()) < 5 * 3 * float((x**2).sum()) / 4000


@pytest.mark.parametrize(("n", "k"), [(50, 5), (50, 30), (7, 7), (1, 1)])
def test_random_subsets_are_uniform(n, k):
    gen = torch.Generator().manual_seed(n + k)
    counts = torch.zeros(n)
    draws = 3000
    for _ in range(draws):
        idx = sample_indices(n, k, gen)
        assert idx.numel() == k and bool((idx[1:] > idx[:-1]).all())
        counts[idx] += 1
    p = k / n  # each index is kept with probability k/n; 5 binomial standard deviations
    assert float((counts / draws - p).abs().max()) <= 5 * math.sqrt(p * (1 - p) / draws) + 1e-12


def test_wire_bytes_and_value_dtype():
    # FedLab 1.3 sends float32 values and int64 indices: 12 bytes per kept element.
    n, k = 10_000, 100
    blob = TopkCompressor(k / n, error_feedback=False).encode(torch.randn(n))
    assert blob.numel() == 16 + 4 * k + 4 * k
    half = TopkCompressor(k / n, error_feedback=False, value_dtype=torch.float16).encode(torch.randn(n))
    assert half.numel() == 16 + 4 * k + 2 * k
    x = torch.randn(n)
    comp = TopkCompressor(k / n, error_feedback=False, value_dtype=torch.bfloat16)
    out = comp.decode(comp.encode(x), (100, 100), torch.float32)
    nz = out.view(-1) != 0
    assert torch.equal(out.view(-1)[nz], x[nz].bfloat16().float())


def test_state_dict_resumes_bit_for_bit():
    gen = torch.Generator().manual_seed(2)
    gs = [torch.randn(300, generator=gen) for _ in range(6)]
    for make in (lambda: TopkCompressor(0.1), lambda: RandomKCompressor(0.1, seed=4)):
        a = make()
        blobs = [a.encode(g) for g in gs]
        b = make()
        for g in gs[:3]:
            b.encode(g)
        c = make()
        c.load_state_dict(b.state_dict())
        assert all(torch.equal(c.encode(g), blob) for g, blob in zip(gs[3:], blobs[3:], strict=True))


def test_kept_count_is_ceil_of_ratio_times_size():
    assert [
        keep_count(r, n) for r, n in [(0.07, 100), (0.073, 100), (0.01, 10_000), (1e-9, 5), (0.5, 0)]
    ] == [
        7,
        8,
        100,
        1,
        0,
    ]


def test_bad_arguments():
    with pytest.raises(KernelArgumentError, match="r > 1 means 1/r"):
        TopkCompressor(10)
    with pytest.raises(KernelArgumentError, match="pick one"):
        RandomKCompressor(0.1, unbiased=True)
    comp = TopkCompressor(0.1)
    comp.encode(torch.randn(10))
    with pytest.raises(KernelArgumentError, match="one compressor per model layout"):
        comp.encode(torch.randn(11))

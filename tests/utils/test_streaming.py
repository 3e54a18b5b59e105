from __future__ import annotations

import math
import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfl.utils import Aggregators, StreamingAggregator


def exact_mean(xs, weights):
    """The weighted mean with every element summed exactly (math.fsum), then rounded once."""
    total = math.fsum(weights)
    cols = torch.stack([x.double() for x in xs]).t().tolist()
    return torch.tensor(
        [math.fsum(w * v for w, v in zip(weights, col, strict=True)) / total for col in cols],
        dtype=torch.float64,
    )


def run(xs, weights, **kwargs):
    agg = StreamingAggregator(**kwargs)
    for x, w in zip(xs, weights, strict=True):
        agg.add(x, w)
    return agg.result()


def test_weighted_mean_matches_fedavg(backend):
    xs = [torch.randn(513) for _ in range(7)]
    weights = [3, 1, 4, 1, 5, 9, 2]
    agg = StreamingAggregator()
    for x, w in zip(xs, weights, strict=True):
        agg.add(x, w)
    assert agg.count == 7 and agg.total_weight == 25.0 and agg.numel == 513
    out = torch.empty(513)
    assert agg.write_(out) is out
    torch.testing.assert_close(out, Aggregators.fedavg_aggregate(xs, weights), rtol=1e-6, atol=1e-6)
    assert torch.equal(agg.result(), out)


def test_any_shape_and_output_dtypes(backend):
    xs = [torch.randn(4, 5).to(torch.bfloat16), torch.randn(20).half()]
    agg = StreamingAggregator()
    agg.add(xs[0], 1.0)
    agg.add(xs[1], 3.0)
    expected = (xs[0].double().reshape(-1) + 3 * xs[1].double()) / 4
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6), (torch.float16, 1e-3)):
        out = agg.write_(torch.empty(4, 5, dtype=dtype))
        torch.testing.assert_close(out.reshape(-1).double(), expected, rtol=tol, atol=tol)


def test_result_dtype_follows_the_updates(backend):
    agg = StreamingAggregator()
    agg.add(torch.ones(3, dtype=torch.float16))
    assert agg.result().dtype == torch.float32
    agg.add(torch.ones(3, dtype=torch.float64))
    assert agg.result().dtype == torch.float64


def test_reset_reuses_the_accumulator(backend):
    agg = StreamingAggregator(16)
    agg.add(torch.ones(16), 2.0)
    first = agg.result()
    accumulator = agg._acc
    agg.reset()
    with pytest.raises(ValueError, match="no update was added"):
        agg.result()
    agg.add(torch.full((16,), 3.0), 1.0)
    assert agg._acc is accumulator  # no new allocation per round
    assert torch.equal(first, torch.ones(16)) and torch.equal(agg.result(), torch.full((16,), 3.0))


def test_errors_name_the_problem():
    agg = StreamingAggregator()
    with pytest.raises(ValueError, match=r"no update was added; call add\(\)"):
        agg.write_(torch.empty(3))
    agg.add(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="total weight 0"):
        agg.result()
    with pytest.raises(ValueError, match="update has 4 elements but this aggregator takes 3"):
        agg.add(torch.ones(4))
    with pytest.raises(ValueError, match="weight is -1; it must be finite and non-negative"):
        agg.add(torch.ones(3), -1)
    with pytest.raises(ValueError, match="weight is inf"):
        agg.add(torch.ones(3), float("inf"))
    with pytest.raises(TypeError, match=r"update has dtype torch\.int64"):
        agg.add(torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"update must be a torch\.Tensor"):
        agg.add([1.0, 2.0, 3.0])
    agg.add(torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="out has 2 elements but the updates have 3"):
        agg.write_(torch.empty(2))
    with pytest.raises(TypeError, match=r"out has dtype torch\.int32"):
        agg.write_(torch.empty(3, dtype=torch.int32))
    agg6 = StreamingAggregator(6)
    agg6.add(torch.ones(6))
    with pytest.raises(ValueError, match="not contiguous"):
        agg6.write_(torch.empty(3, 2).t())
    with pytest.raises(TypeError, match="acc_dtype"):
        StreamingAggregator(acc_dtype=torch.float16)
    with pytest.raises(ValueError, match="numel must be"):
        StreamingAggregator(-1)


def test_bitwise_reproducible_for_a_fixed_order(backend):
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(4097, generator=gen) * 10 ** (i % 5) for i in range(20)]
    weights = [float(i % 7 + 1) / 3 for i in range(20)]
    assert torch.equal(run(xs, weights), run(xs, weights))
    assert torch.equal(run(xs, weights, acc_dtype=torch.float32), run(xs, weights, acc_dtype=torch.float32))


def test_fp64_accumulation_is_order_independent_and_more_accurate(backend):
    """Why float64 is the default: permuting the arrival order leaves the float32 result nearly
    bit-identical, and it is the correctly rounded exact mean, unlike a float32 running sum's."""
    gen = torch.Generator().manual_seed(2)
    k, n = 60, 2000
    xs = [
        torch.randn(n, generator=gen) * 10 ** float(torch.randint(-3, 4, (), generator=gen)) for _ in range(k)
    ]
    weights = [float(w) for w in torch.randint(1, 500, (k,), generator=gen)]
    exact = exact_mean(xs, weights)
    perms = [torch.randperm(k, generator=gen).tolist() for _ in range(4)]
    results = {}
    for acc in (torch.float64, torch.float32):
        outs = [run([xs[i] for i in p], [weights[i] for i in p], acc_dtype=acc) for p in perms]
        results[acc] = outs
        for out in outs:  # order independence within tolerance, for both
            torch.testing.assert_close(out, outs[0], rtol=1e-4, atol=1e-5)
    f64, f32 = results[torch.float64], results[torch.float32]
    f64_mismatch = max((o != f64[0]).sum().item() for o in f64)
    f32_mismatch = max((o != f32[0]).sum().item() for o in f32)
    assert f64_mismatch <= n // 100  # at most 1% of elements differ (in the last bit) across orders
    assert f32_mismatch > 5 * max(f64_mismatch, 1)
    # float64: the float32 result is the correctly rounded exact mean almost everywhere
    rounded = exact.float()
    assert (f64[0] != rounded).sum().item() <= n // 100
    assert (f32[0] != rounded).sum().item() > n // 4


def test_concurrent_adds_are_serialised(backend):
    xs = [torch.full((50_000,), float(i)) for i in range(8)]
    agg = StreamingAggregator()
    threads = [threading.Thread(target=agg.add, args=(x, 1.0)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert agg.count == 8
    assert torch.equal(agg.result(), torch.full((50_000,), 3.5))


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 10),
    n=st.integers(0, 200),
    data=st.data(),
)
def test_hypothesis_matches_exact_mean_in_any_order(k, n, data):
    weights = data.draw(st.lists(st.floats(0.0, 1e4), min_size=k, max_size=k).filter(lambda w: sum(w) > 1e-6))
    order = data.draw(st.permutations(range(k)))
    gen = torch.Generator().manual_seed(k * 7919 + n)
    xs = [torch.randn(n, generator=gen) for _ in range(k)]
    out = run([xs[i] for i in order], [weights[i] for i in order])
    ref = run(xs, weights)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
    if n:
        torch.testing.assert_close(out.double(), exact_mean(xs, weights), rtol=1e-6, atol=1e-7)

"""Aggregation kernels on every backend: weighted_sum (FedAvg), accumulate_ and mix_ (FedAsync).

Sums round, so results are compared with the exact float64 result within a bound that scales
with the magnitudes of the terms and the number of roundings; exact cases (K=1, zero weights,
alpha 0 and 1) are compared exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastfl import ops
from tests.ops.kernel_data import (
    FLOAT_DTYPES,
    KERNEL_SETTINGS,
    assert_same_values,
    assert_within,
    eps,
    float_data,
    generator,
    seeds,
    shapes,
)

ACC = (torch.float32, torch.float64)
weight_values = st.one_of(
    st.floats(-3, 3, allow_nan=False, width=64),
    st.sampled_from([0.0, -0.0, 1.0, 0.1, 1e-30, 1e6]),
)


def _reference(xs, ws):
    ref = torch.zeros(xs[0].shape, dtype=torch.float64)
    scale = torch.zeros(xs[0].shape, dtype=torch.float64)
    for x, w in zip(xs, ws, strict=True):
        ref += w * x.double()
        scale += abs(w) * x.double().abs()
    return ref, scale


def _bound(k, acc_dtype, dtypes):
    rounded_inputs = acc_dtype == torch.float32 and torch.float64 in dtypes
    return (k + 2) * eps(acc_dtype) + (eps(torch.float32) if rounded_inputs else 0.0)


@KERNEL_SETTINGS
@given(
    shape=shapes,
    dtypes=st.lists(st.sampled_from(FLOAT_DTYPES), min_size=1, max_size=12),
    weights=st.data(),
    acc_dtype=st.sampled_from(ACC),
    out_dtype=st.sampled_from([None, *ACC]),
    seed=seeds,
)
def test_weighted_sum_matches_exact_sum(backend, shape, dtypes, weights, acc_dtype, out_dtype, seed):
    gen = generator(seed)
    xs = [float_data(shape, dt, gen) for dt in dtypes]
    ws = weights.draw(st.lists(weight_values, min_size=len(xs), max_size=len(xs)))
    out = None if out_dtype is None else torch.full(shape, float("nan"), dtype=out_dtype)
    got = ops.weighted_sum(xs, ws, out=out, acc_dtype=acc_dtype)
    if out is not None:
        assert got is out
    assert got.dtype == (out_dtype or acc_dtype) and got.shape == shape
    ref, scale = _reference(xs, ws)
    # Products below the accumulator's smallest normal may flush: allow K of them. A float32 out
    # of a float64 sum adds one rounding, and flushes below float32's smallest normal.
    narrow = torch.float32 if torch.float32 in (acc_dtype, out_dtype) else torch.float64
    tiny = (len(xs) + 4) * torch.finfo(narrow).tiny
    bound = _bound(len(xs), acc_dtype, dtypes) + (eps(narrow) if narrow != acc_dtype else 0.0)
    assert_within(got, ref, scale, bound, tiny)
    # The one-line torch expression agrees too.
    torch_expr = sum(w * x.double() for w, x in zip(ws, xs, strict=True))
    assert_within(got, torch_expr, scale, bound, tiny)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 16, 65])
@pytest.mark.parametrize("acc_dtype", ACC)
def test_weighted_sum_many_inputs_fp32(backend, k, acc_dtype):
    gen = generator(k)
    xs = [float_data((1537,), torch.float32, gen) for _ in range(k)]
    ws = (torch.rand(k, generator=gen, dtype=torch.float64) * 2 - 0.5).tolist()
    got = ops.weighted_sum(xs, ws, acc_dtype=acc_dtype)
    ref, scale = _reference(xs, ws)
    assert_within(got, ref, scale, _bound(k, acc_dtype, [torch.float32]))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_weighted_sum_of_one_input_with_weight_one_is_that_input(backend, dtype):
    x = float_data((2, 501), dtype, generator(1))
    got = ops.weighted_sum([x], [1.0], acc_dtype=torch.float64)
    assert torch.equal(got, x.double())
    if dtype != torch.float64:
        assert torch.equal(ops.weighted_sum([x], [1.0]), x.float())


def test_weighted_sum_zero_weights_give_zeros_and_overwrite_out(backend):
    xs = [float_data((333,), torch.float32, generator(i)) for i in range(4)]
    out = torch.full((333,), float("nan"))
    assert torch.equal(ops.weighted_sum(xs, [0.0] * 4, out=out), torch.zeros(333))
    got = ops.weighted_sum(xs, [0.0, 2.0, 0.0, 0.0], out=out)
    assert torch.equal(got, 2 * xs[1])


def test_weighted_sum_negative_weights_are_allowed(backend):
    a, b = float_data((100,), torch.float32, generator(0)), float_data((100,), torch.float32, generator(1))
    assert torch.equal(ops.weighted_sum([a, a], [1.0, -1.0]), torch.zeros(100))
    ref, scale = _reference([a, b], [-0.5, 2.0])
    assert_within(ops.weighted_sum([a, b], [-0.5, 2.0]), ref, scale, _bound(2, torch.float32, []))


def test_weighted_sum_reuses_out_without_stale_values(backend):
    out = torch.empty(4099, dtype=torch.float64)
    for seed in range(3):
        gen = generator(seed)
        xs = [float_data((4099,), torch.bfloat16, gen) for _ in range(3)]
        ws = [0.25, 0.5, 0.25 + seed]
        got = ops.weighted_sum(xs, ws, out=out, acc_dtype=torch.float64)
        ref, scale = _reference(xs, ws)
        assert_within(got, ref, scale, _bound(3, torch.float64, []))


@pytest.mark.parametrize(
    "make",
    [list, tuple, np.array, torch.tensor, lambda w: torch.tensor(w, dtype=torch.float32)],
    ids=["list", "tuple", "numpy", "tensor64", "tensor32"],
)
def test_weighted_sum_accepts_weights_as_sequences_arrays_and_tensors(backend, make):
    xs = [float_data((257,), torch.float32, generator(i)) for i in range(3)]
    ws = [0.5, 0.25, 0.25]
    assert torch.equal(ops.weighted_sum(xs, make(ws)), ops.weighted_sum(xs, ws))


def test_weighted_sum_propagates_nan_and_infinity(backend):
    x = torch.tensor([1.0, float("inf"), float("nan"), float("inf"), 2.0])
    y = torch.tensor([1.0, 1.0, 1.0, float("-inf"), float("inf")])
    got = ops.weighted_sum([x, y], [0.5, 0.5])
    assert got[0] == 1.0 and got[1] == float("inf") and got[4] == float("inf")
    assert got[2].isnan() and got[3].isnan()


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2)])
def test_weighted_sum_of_0d_and_empty_tensors(backend, shape):
    xs = [torch.full(shape, 2.0), torch.full(shape, 3.0, dtype=torch.float16)]
    got = ops.weighted_sum(xs, [0.5, 2.0])
    assert got.shape == shape
    assert torch.equal(got, torch.full(shape, 7.0))


@KERNEL_SETTINGS
@given(
    shape=shapes,
    acc_dtype=st.sampled_from(ACC),
    x_dtype=st.sampled_from(FLOAT_DTYPES),
    weight=weight_values,
    seed=seeds,
)
def test_accumulate_adds_weighted_input_in_place(backend, shape, acc_dtype, x_dtype, weight, seed):
    gen = generator(seed)
    acc = float_data(shape, acc_dtype, gen)
    x = float_data(shape, x_dtype, gen)
    before = acc.to(torch.float64, copy=True)
    assert ops.accumulate_(acc, x, weight) is acc
    ref = before + weight * x.double()
    scale = before.abs() + abs(weight) * x.double().abs()
    assert_within(acc, ref, scale, _bound(1, acc_dtype, [x_dtype]))


def test_accumulate_streamed_equals_weighted_sum(backend):
    gen = generator(4)
    xs = [float_data((2049,), torch.float16, gen) for _ in range(10)]
    ws = torch.rand(10, generator=gen, dtype=torch.float64).tolist()
    acc = torch.zeros(2049, dtype=torch.float64)
    for x, w in zip(xs, ws, strict=True):
        ops.accumulate_(acc, x, w)
    ref, scale = _reference(xs, ws)
    assert_within(acc, ref, scale, _bound(10, torch.float64, []))
    streamed32 = torch.zeros(2049)
    for x, w in zip(xs, ws, strict=True):
        ops.accumulate_(streamed32, x, w)
    assert_within(streamed32, ref, scale, _bound(10, torch.float32, []))


def test_accumulate_with_zero_weight_changes_nothing(backend):
    acc = float_data((1000,), torch.float32, generator(0))
    before = acc.clone()
    ops.accumulate_(acc, float_data((1000,), torch.bfloat16, generator(1)), 0.0)
    assert torch.equal(acc, before)


alphas = st.one_of(st.floats(0, 1, width=64), st.sampled_from([0.0, 1.0, 0.5, 1e-7, -0.5, 1.5]))


@KERNEL_SETTINGS
@given(
    shape=shapes,
    s_dtype=st.sampled_from(FLOAT_DTYPES),
    n_dtype=st.sampled_from(FLOAT_DTYPES),
    alpha=alphas,
    seed=seeds,
)
def test_mix_blends_in_place(backend, shape, s_dtype, n_dtype, alpha, seed):
    gen = generator(seed)
    s = float_data(shape, s_dtype, gen)
    n = float_data(shape, n_dtype, gen)
    s0, n0 = s.to(torch.float64, copy=True), n.double()
    assert ops.mix_(s, n, alpha) is s
    assert s.dtype == s_dtype
    ref = (1 - alpha) * s0 + alpha * n0
    scale = (abs(1 - alpha) + abs(alpha) + 1) * s0.abs() + abs(alpha) * n0.abs()
    wide = torch.float64 if s_dtype == torch.float64 else torch.float32
    assert_within(s, ref, scale, 4 * eps(wide) + (eps(torch.float32) if n_dtype == torch.float64 else 0.0))


@pytest.mark.parametrize(
    ("s_dtype", "n_dtype"),
    [(d, d) for d in FLOAT_DTYPES] + [(torch.float16, torch.float32), (torch.float64, torch.bfloat16)],
)
def test_mix_with_alpha_zero_or_one_gives_an_endpoint_exactly(backend, s_dtype, n_dtype):
    s = float_data((1031,), s_dtype, generator(0))
    n = float_data((1031,), n_dtype, generator(1))
    s0 = s.clone()
    ops.mix_(s, n, 0.0)
    assert torch.equal(s, s0)
    ops.mix_(s, n, 1.0)
    assert torch.equal(s, n.to(s_dtype))


def test_mix_keeps_non_finite_values(backend):
    s = torch.tensor([float("inf"), 1.0, float("nan"), 0.0])
    ops.mix_(s, torch.tensor([float("inf"), float("-inf"), 1.0, 2.0]), 0.25)
    assert s[0] == float("inf") and s[1] == float("-inf") and s[2].isnan() and s[3] == 0.5


@pytest.mark.parametrize("shape", [(), (0,)])
def test_accumulate_and_mix_on_0d_and_empty_tensors(backend, shape):
    acc, x = torch.full(shape, 1.0, dtype=torch.float64), torch.full(shape, 4.0)
    ops.accumulate_(acc, x, 0.5)
    assert_same_values(acc, torch.full(shape, 3.0, dtype=torch.float64))
    s = torch.full(shape, 1.0, dtype=torch.bfloat16)
    ops.mix_(s, x, 0.5)
    assert_same_values(s, torch.full(shape, 2.5, dtype=torch.bfloat16))

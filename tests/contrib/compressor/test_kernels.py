"""The compression kernels on every backend against the torch reference (fastfl.ops._torch).

QSGD codes, dequantized values, top-k selections, gathers/scatters and DGC updates must match the
reference bit for bit (same draws, same float64 arithmetic); sums of squares within rounding.
Inputs include empty and odd-length vectors, zero vectors, ties and repeated magnitudes.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastfl import ops
from fastfl.errors import KernelArgumentError, KernelTypeError
from fastfl.ops import compress as kc
from tests.ops.kernel_data import KERNEL_SETTINGS

BUFFERS = (torch.float32, torch.float64)
sizes = st.one_of(st.integers(0, 70), st.integers(1000, 30_000).map(lambda n: n | 1))
kinds = st.sampled_from(["normal", "zeros", "ties", "tiny"])


def _vector(n: int, dtype: torch.dtype, kind: str, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if kind == "zeros":
        return torch.zeros(n, dtype=dtype)
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    if kind == "ties":  # few distinct magnitudes, both signs: many ties for top-k
        x = torch.randint(-3, 4, (n,), generator=gen).double()
    if kind == "tiny":
        x = x * 1e-30
    return x.to(dtype)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int64 if t.dtype == torch.float64 else torch.int32)


def _reference():
    return ops.using("torch")


def test_sum_squares_gives_the_same_bits_on_every_call_with_threads(backend, monkeypatch):
    # Threads take chunks in any order; the partials must still be added in one fixed order.
    monkeypatch.setenv("FASTFL_NUM_THREADS", "3")
    x = torch.randn(3_000_001, generator=torch.Generator().manual_seed(3))
    first = kc.sum_squares(x)
    assert all(kc.sum_squares(x) == first for _ in range(20))
    assert first == pytest.approx(float((x.double() ** 2).sum()), rel=1e-12, abs=0.0)


@KERNEL_SETTINGS
@given(
    n=sizes,
    dtype=st.sampled_from(BUFFERS),
    kind=kinds,
    s=st.sampled_from([1, 2, 7, 127, 255, 32767]),
    seed=st.integers(0, 2**64 - 1),
    data_seed=st.integers(0, 2**31 - 1),
)
def test_qsgd_matches_reference(backend, n, dtype, kind, s, seed, data_seed):
    x = _vector(n, dtype, kind, data_seed)
    norm = float(x.double().norm())
    codes = kc.qsgd_quantize(x, s=s, norm=norm, seed=seed)
    out = kc.qsgd_dequantize(codes, s=s, norm=norm, out=torch.empty(n, dtype=dtype))
    with _reference():
        ref_codes = kc.qsgd_quantize(x, s=s, norm=norm, seed=seed)
        ref_out = kc.qsgd_dequantize(ref_codes, s=s, norm=norm, out=torch.empty(n, dtype=dtype))
    assert codes.numel() == (n * (1 + s.bit_length()) + 7) // 8
    assert torch.equal(codes, ref_codes)
    assert torch.equal(_bits(out), _bits(ref_out))  # bit for bit: -0.0 and +0.0 differ
    if kind == "zeros":
        assert not out.isnan().any() and not out.any()


@KERNEL_SETTINGS
@given(n=sizes, dtype=st.sampled_from(BUFFERS), kind=kinds, data_seed=st.integers(0, 2**31 - 1))
def test_sum_squares_matches_reference(backend, n, dtype, kind, data_seed):
    x = _vector(n, dtype, kind, data_seed)
    exact = float((x.double() ** 2).sum())
    assert kc.sum_squares(x) == pytest.approx(exact, rel=1e-12, abs=0.0)


@KERNEL_SETTINGS
@given(
    n=sizes,
    dtype=st.sampled_from(BUFFERS),
    kind=kinds,
    frac=st.floats(0, 1.2),
    data_seed=st.integers(0, 2**31 - 1),
)
def test_topk_matches_reference(backend, n, dtype, kind, frac, data_seed):
    x = _vector(n, dtype, kind, data_seed)
    k = int(frac * n)
    idx, vals = kc.topk(x, k)
    with _reference():
        ref_idx, ref_vals = kc.topk(x, k)
    assert torch.equal(idx, ref_idx) and torch.equal(vals, ref_vals)
    assert idx.numel() == min(k, n)
    if idx.numel() > 1:
        assert bool((idx[1:] > idx[:-1]).all())
    kept = torch.zeros(n, dtype=torch.bool)
    kept[idx] = True
    if 0 < idx.numel() < n:  # every kept magnitude >= every dropped one
        assert float(x[kept].abs().min()) >= float(x[~kept].abs().max())


@KERNEL_SETTINGS
@given(
    n=st.integers(1, 3000),
    dtype=st.sampled_from(BUFFERS),
    data_seed=st.integers(0, 2**31 - 1),
    with_vals=st.booleans(),
)
def test_gather_scatter_match_reference(backend, n, dtype, data_seed, with_vals):
    gen = torch.Generator().manual_seed(data_seed)
    x = _vector(n, dtype, "normal", data_seed)
    idx = torch.randperm(n, generator=gen)[: max(1, n // 3)]
    vals = kc.gather(x, idx)
    out = x.clone()
    kc.scatter_(out, idx, -vals if with_vals else None)
    with _reference():
        ref_vals = kc.gather(x, idx)
        ref_out = kc.scatter_(x.clone(), idx, -ref_vals if with_vals else None)
    assert torch.equal(vals, x[idx]) and torch.equal(vals, ref_vals)
    assert torch.equal(out, ref_out)


@KERNEL_SETTINGS
@given(
    n=sizes,
    dtype=st.sampled_from(BUFFERS),
    nesterov=st.booleans(),
    m=st.sampled_from([0.0, 0.9, 0.5]),
    data_seed=st.integers(0, 2**31 - 1),
)
def test_dgc_accumulate_matches_reference(backend, n, dtype, nesterov, m, data_seed):
    u0, v0, g = (_vector(n, dtype, "normal", data_seed + i) for i in range(3))
    u, v = u0.clone(), v0.clone()
    kc.dgc_accumulate_(u, v, g, m, nesterov=nesterov)
    with _reference():
        ru, rv = u0.clone(), v0.clone()
        kc.dgc_accumulate_(ru, rv, g, m, nesterov=nesterov)
    assert torch.equal(u, ru) and torch.equal(v, rv)


def test_arguments_are_checked(backend):
    x = torch.randn(10)
    with pytest.raises(KernelArgumentError, match="s \\(QSGD levels\\)"):
        kc.qsgd_quantize(x, s=0, norm=1.0, seed=0)
    with pytest.raises(KernelArgumentError, match="seed"):
        kc.qsgd_quantize(x, s=3, norm=1.0, seed=-1)
    with pytest.raises(KernelArgumentError, match="norm"):
        kc.qsgd_quantize(x, s=3, norm=float("nan"), seed=0)
    with pytest.raises(KernelTypeError, match=r"x has dtype torch\.float16"):
        kc.qsgd_quantize(x.half(), s=3, norm=1.0, seed=0)
    with pytest.raises(KernelArgumentError, match="codes must be 1-D uint8 with 4 bytes"):
        kc.qsgd_dequantize(torch.zeros(3, dtype=torch.uint8), s=3, norm=1.0, out=x)
    with pytest.raises(KernelArgumentError, match="idx holds indices outside"):
        kc.scatter_(x, torch.tensor([3, 10]))
    with pytest.raises(KernelTypeError, match="idx must be a 1-D int64"):
        kc.gather(x, torch.tensor([1, 2], dtype=torch.int32))
    with pytest.raises(KernelArgumentError, match="k must be"):
        kc.topk(x, -1)
    with pytest.raises(KernelArgumentError, match="u must match g"):
        kc.dgc_accumulate_(torch.zeros(3), torch.zeros(10), x, 0.9)


def test_corrupt_levels_are_counted(backend):
    codes = torch.full((2,), 0xFF, dtype=torch.uint8)  # s=2: 3-bit codes, level 3 > 2
    with pytest.raises(KernelArgumentError, match="levels above s=2"):
        kc.qsgd_dequantize(codes, s=2, norm=1.0, out=torch.empty(5))


@pytest.mark.skipif("native" not in ops.available_backends(), reason="the native backend is not built")
@pytest.mark.parametrize("s", [7, 127])
def test_qsgd_native_is_the_same_at_every_vector_level(s):
    from fastfl import _C
    from fastfl.ops import _native

    levels = _native.ISA_LEVELS[: _native.ISA_LEVELS.index(_C.isa_available()) + 1]
    x = _vector(20_001, torch.float32, "normal", 5)
    norm = float(x.double().norm())
    results = []
    previous = _native.set_isa(levels[-1])
    try:
        with ops.using("native"):
            for level in levels:
                _native.set_isa(level)
                codes = kc.qsgd_quantize(x, s=s, norm=norm, seed=11)
                out = kc.qsgd_dequantize(codes, s=s, norm=norm, out=torch.empty_like(x))
                results.append((codes, _bits(out)))
    finally:
        _native.set_isa(previous)
    with _reference():
        ref = kc.qsgd_quantize(x, s=s, norm=norm, seed=11)
    for codes, out in results:
        assert torch.equal(codes, ref) and torch.equal(out, results[0][1])

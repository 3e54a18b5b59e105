"""Test data and exact oracles for the kernel tests: value generators, an exact cast, tolerances.

The cast oracle is independent of torch's own conversions (which round float64, int32 and int64
twice on the way to float16/bfloat16): it rounds once, to nearest even, with numpy and integer
arithmetic, so the tests hold every backend to the specification rather than to torch's quirks.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import Tensor

from fastfl.dtypes import FLOAT_DTYPES, HALF_DTYPES, TORCH_DTYPES

ALL_DTYPES = tuple(TORCH_DTYPES.values())
INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
BITS_VIEW = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32}
BITS_VIEW[torch.float64] = torch.int64

# Hypothesis budget: small by default (CI), raised with FASTFL_HYPOTHESIS_EXAMPLES for a deep run.
KERNEL_SETTINGS = settings(
    max_examples=int(os.environ.get("FASTFL_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

seeds = st.integers(0, 2**31 - 1)
small_shapes = st.lists(st.integers(0, 6), max_size=3).map(tuple)
odd_long_shapes = st.integers(1000, 40_000).map(lambda n: (n | 1,))
shapes = st.one_of(small_shapes, small_shapes, odd_long_shapes)
shape_lists = st.one_of(
    st.lists(shapes, max_size=10),
    st.integers(50, 300).map(lambda n: [()] * n),
    st.integers(50, 300).map(lambda n: [(1,)] * n),
    odd_long_shapes.map(lambda s: [s]),
)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_bits(shape: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator) -> Tensor:
    """Uniformly random bit patterns: every NaN, Inf, subnormal and -0.0 can occur for floats."""
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    size = torch.empty((), dtype=dtype).element_size()
    raw = torch.randint(0, 256, (n * size,), dtype=torch.uint8, generator=gen)
    return raw.view(dtype).reshape(shape)


def values(shape: tuple[int, ...], src: torch.dtype, dst: torch.dtype, gen: torch.Generator) -> Tensor:
    """Source values for a src -> dst conversion whose result the specification defines.

    Float -> integer conversions are defined only inside the target's range, so those sources
    hold in-range values (with fractions); every other pair gets random bit patterns, with common
    magnitudes, ties and specials mixed in for float sources.
    """
    if src in FLOAT_DTYPES and dst in INT_DTYPES:
        info = torch.iinfo(dst)
        u = torch.rand(shape, dtype=torch.float64, generator=gen)
        x = (u * (float(info.max) - float(info.min)) + float(info.min)).to(src)
        small = (torch.randn(shape, dtype=torch.float64, generator=gen) * 8).to(src)
        x = torch.where(torch.rand(shape, generator=gen) < 0.5, x, small)
        wide = x.double()
        ok = (wide > float(info.min) - 1) & (wide < float(info.max) + 1)
        return torch.where(ok, x, torch.zeros((), dtype=src))
    x = random_bits(shape, src, gen)
    if src in FLOAT_DTYPES and x.numel():
        common = (torch.randn(shape, dtype=torch.float64, generator=gen) * 100).to(src)
        pick = torch.rand(shape, generator=gen)
        x = torch.where(pick < 0.4, common, x)
        specials = torch.tensor(SPECIALS, dtype=torch.float64).to(src)
        idx = torch.randint(0, len(SPECIALS), shape, generator=gen)
        x = torch.where(pick > 0.9, specials[idx], x)
    return x


SPECIALS = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.0, -1.0, 1 + 2**-11, 1 + 3 * 2**-11]
SPECIALS += [1 + 2**-8, 1 + 3 * 2**-8, 65504.0, 65520.0, 2**-24, 2**-25, 1.5 * 2**-25, 2**-149, 1e-40]


def torch_double_rounds(src: torch.dtype, dst: torch.dtype) -> bool:
    """Whether torch's own conversion rounds twice (via float32) for this pair."""
    return (dst == torch.bfloat16 and src in (torch.float64, torch.int32, torch.int64)) or (
        dst == torch.float16 and src == torch.float64
    )


def avoid_double_rounding(x: Tensor) -> Tensor:
    """Map x to values that float32 holds exactly, where rounding once or twice agree."""
    if x.dtype in FLOAT_DTYPES:
        return x.float().to(x.dtype)
    return torch.remainder(x, 2**24) - 2**23  # int32 and int64: |x| < 2**24


def ref_cast(x: Tensor, dst: torch.dtype) -> Tensor:
    """Convert x to dst exactly as specified: one round-to-nearest-even, integers wrap."""
    with np.errstate(all="ignore"):
        return _ref_cast(x, dst)


def _ref_cast(x: Tensor, dst: torch.dtype) -> Tensor:
    src = x.dtype
    if src == dst:
        return x.clone()
    if dst == torch.bool:
        return x != 0
    if dst in HALF_DTYPES:
        wide = _as_float64(x)
        if dst == torch.float16:
            return torch.from_numpy(wide.astype(np.float16)).reshape(x.shape)
        return _f64_to_bf16(wide).reshape(x.shape)
    if dst in (torch.float32, torch.float64):
        out = _as_float64(x)
        return torch.from_numpy(out.astype(np.float32 if dst == torch.float32 else np.float64)).reshape(
            x.shape
        )
    # Integer targets: truncation toward zero (in-range floats), two's-complement wrap-around.
    if src in FLOAT_DTYPES:
        return torch.from_numpy(_as_float64(x).astype(np.int64)).to(dst).reshape(x.shape)
    wide = x.numpy().astype(np.int64)
    return torch.from_numpy(wide.astype(torch.empty((), dtype=dst).numpy().dtype)).reshape(x.shape)


def _as_float64(x: Tensor) -> np.ndarray:
    """x as float64 numpy values: exact for all sources but int64, which rounds once (harmlessly)."""
    if x.dtype in HALF_DTYPES:
        return x.float().numpy().astype(np.float64).reshape(-1)
    return x.numpy().astype(np.float64).reshape(-1)


def _f64_to_bf16(a: np.ndarray) -> Tensor:
    """Round float64 to bfloat16 once: round-to-odd into float32, then nearest-even into bf16."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = a.astype(np.float32)
        back = f.astype(np.float64)
        nan = np.isnan(a)
        bits = f.view(np.uint32).astype(np.uint64)
        bits = np.where(~nan & (np.abs(back) > np.abs(a)), bits - 1, bits)
        bits = np.where(~nan & (back != a), bits | 1, bits)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    rounded = np.where(nan, 0x7FC0, rounded).astype(np.uint16)
    return torch.from_numpy(rounded.view(np.int16)).view(torch.bfloat16)


def assert_same_values(got: Tensor, ref: Tensor) -> None:
    """Bitwise equality (so -0.0 differs from 0.0), except that any NaN matches any NaN."""
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if got.dtype in FLOAT_DTYPES:
        nan_got, nan_ref = torch.isnan(got), torch.isnan(ref)
        bad = (nan_got != nan_ref) | (
            ~nan_ref & (got.view(BITS_VIEW[got.dtype]) != ref.view(BITS_VIEW[got.dtype]))
        )
    else:
        bad = got != ref
    if bad.any():
        i = int(bad.reshape(-1).nonzero()[0])
        g, r = got.reshape(-1)[i], ref.reshape(-1)[i]
        raise AssertionError(
            f"{int(bad.sum())} of {got.numel()} elements differ; first at flat index {i}: "
            f"got {g.item()!r}, expected {r.item()!r}"
        )


def eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def assert_within(got: Tensor, ref64: Tensor, scale64: Tensor, rel: float, tiny: float | None = None) -> None:
    """|got - ref| <= rel * scale + eps(got) * |ref| + tiny, elementwise, computed in float64.

    ref64 is the exact (float64) result and scale64 the sum of the magnitudes of its terms, so
    cancellation is judged against the size of the inputs, as floating-point error is. `tiny` is
    the absolute slack for results that underflow (default: a few of got's smallest normals;
    pass more when the computation ran in a narrower dtype than got's).
    """
    assert got.shape == ref64.shape, (got.shape, ref64.shape)
    g = got.double()
    tiny = torch.finfo(got.dtype).tiny * 4 if tiny is None else tiny
    bound = rel * scale64 + eps(got.dtype) * ref64.abs() + tiny
    err = (g - ref64).abs()
    bad = ~(err <= bound)
    if bad.any():
        i = int(bad.reshape(-1).nonzero()[0])
        raise AssertionError(
            f"{int(bad.sum())} of {got.numel()} elements off; first at {i}: got {g.reshape(-1)[i].item()!r}, "
            f"expected {ref64.reshape(-1)[i].item()!r} +- {bound.reshape(-1)[i].item():.3g}"
        )


def float_data(shape: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator) -> Tensor:
    """Finite values of mixed sign and magnitude in a floating dtype (for sums)."""
    x = torch.randn(shape, dtype=torch.float64, generator=gen)
    scale = torch.exp2(torch.randint(-6, 7, shape, generator=gen).double())
    return (x * scale).to(dtype)

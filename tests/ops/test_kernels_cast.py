"""Copying kernels on every backend: cast, flatten, unflatten_ (copy/add/sub) and pack.

Copies and casts are exact operations, so results must equal the exact oracle bit for bit
(-0.0, subnormals, Inf, ties rounded to even); only NaN payloads are free.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastfl import ops
from tests.ops.kernel_data import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    KERNEL_SETTINGS,
    assert_same_values,
    assert_within,
    avoid_double_rounding,
    eps,
    float_data,
    generator,
    ref_cast,
    seeds,
    shape_lists,
    shapes,
    torch_double_rounds,
    values,
)

PAIRS = list(itertools.product(ALL_DTYPES, ALL_DTYPES))
# Backends known to convert float64/int32/int64 to float16/bfloat16 through float32, rounding
# twice, as torch's own conversion does. test_cast_to_half_equals_torch_to pins that fastfl gives
# torch's bits there; the tests against the single-rounding oracle avoid those few inputs.
ROUNDS_TWICE = {"torch", "native", "numba"}


def _source(shape, src, dst, gen, backend):
    x = values(shape, src, dst, gen)
    if backend in ROUNDS_TWICE and torch_double_rounds(src, dst):
        x = avoid_double_rounding(x)
    return x


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}".replace("torch.", "") for a, b in PAIRS])
def test_cast_matches_exact_oracle_for_every_dtype_pair(backend, src, dst):
    x = _source((4099,), src, dst, generator(PAIRS.index((src, dst))), backend)
    out = torch.full((4099,), 1, dtype=dst)
    got = ops.cast(x, dst, out=out)
    assert got is out
    assert_same_values(got, ref_cast(x, dst))


@KERNEL_SETTINGS
@given(shape=shapes, src=st.sampled_from(ALL_DTYPES), dst=st.sampled_from(ALL_DTYPES), seed=seeds)
def test_cast_any_shape_keeps_shape_and_values(backend, shape, src, dst, seed):
    x = _source(shape, src, dst, generator(seed), backend)
    got = ops.cast(x, dst)
    assert got.shape == x.shape
    assert_same_values(got, ref_cast(x, dst))


def _bits(values, dtype):
    return torch.tensor(values, dtype=torch.int16).view(dtype)


ROUNDING_CASES = [
    # (source values, float dtype of the source, target, expected bits of the target)
    (
        [1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-11 + 2**-23],
        torch.float32,
        torch.float16,
        [0x3C00, 0x3C02, 0x3C01],
    ),
    ([65504.0, 65519.99, 65520.0, -65520.0], torch.float32, torch.float16, [0x7BFF, 0x7BFF, 0x7C00, -0x400]),
    ([2**-25, 1.5 * 2**-25, 2**-24, 3 * 2**-25, 2**-14], torch.float32, torch.float16, [0, 1, 1, 2, 0x0400]),
    (
        [-0.0, float("inf"), float("-inf"), -(2**-26)],
        torch.float32,
        torch.float16,
        [-0x8000, 0x7C00, -0x400, -0x8000],
    ),
    ([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-23], torch.float32, torch.bfloat16, [0x3F80, 0x3F82, 0x3F81]),
    (
        [3.4028234663852886e38, -0.0, 1e-45, 2**-133],
        torch.float32,
        torch.bfloat16,
        [0x7F80, -0x8000, 0, 0x0001],
    ),
    ([1 + 2**-11, 65520.0, 2**-25], torch.float64, torch.float16, [0x3C00, 0x7C00, 0]),
]


@pytest.mark.parametrize(("xs", "src", "dst", "expected"), ROUNDING_CASES)
def test_cast_rounds_ties_to_even_and_keeps_specials(backend, xs, src, dst, expected):
    x = torch.tensor(xs, dtype=src)
    want = _bits(expected, dst)
    assert_same_values(ref_cast(x, dst), want)  # the oracle itself agrees with the hand-made table
    assert_same_values(ops.cast(x, dst), want)


def test_cast_keeps_nan_and_infinities(backend):
    x = torch.tensor([float("nan"), -float("nan"), float("inf"), -float("inf")] * 9)
    for dst in FLOAT_DTYPES:
        got = ops.cast(x, dst).double()
        assert got[0::4].isnan().all() and got[1::4].isnan().all()
        assert (got[2::4] == float("inf")).all() and (got[3::4] == float("-inf")).all()
    assert ops.cast(x, torch.bool).all()


@pytest.mark.parametrize(
    ("x", "src", "dst"),
    [
        (1 + 2**-11 + 2**-40, torch.float64, torch.float16),
        (1 + 2**-8 + 2**-40, torch.float64, torch.bfloat16),
        (2**30 + 2**22 + 1, torch.int32, torch.bfloat16),
        (2**40 + 2**32 + 1, torch.int64, torch.bfloat16),
    ],
)
def test_cast_to_half_equals_torch_to(backend, x, src, dst):
    # These inputs lie just above a tie of the half type: torch's .to() goes through float32,
    # whose rounding lands exactly on the tie, which then rounds to even (docs/compat.md: "double
    # rounding"). fastfl gives torch's bits, whichever path a backend takes.
    xs = torch.full((67,), x, dtype=src)  # long enough for vectorised paths, odd for their tails
    assert torch.equal(ops.cast(xs, dst).view(torch.int16), xs.to(dst).view(torch.int16))


def test_cast_into_reused_out_overwrites_every_element(backend):
    out = torch.full((5, 7), float("nan"), dtype=torch.bfloat16)
    for seed in range(3):
        x = values((5, 7), torch.float32, torch.bfloat16, generator(seed))
        assert_same_values(ops.cast(x, torch.bfloat16, out=out), ref_cast(x, torch.bfloat16))
    out = torch.full((3, 35), 7, dtype=torch.int16)
    x = values((5, 7, 3), torch.float64, torch.int16, generator(9))
    assert_same_values(ops.cast(x, torch.int16, out=out), ref_cast(x, torch.int16).reshape(3, 35))


@KERNEL_SETTINGS
@given(shape_list=shape_lists, dtype=st.sampled_from(ALL_DTYPES), seed=seeds)
def test_flatten_equals_cat_of_flattened(backend, shape_list, dtype, seed):
    gen = generator(seed)
    ts = [values(s, dtype, dtype, gen) for s in shape_list]
    got = ops.flatten(ts)
    want = torch.cat([t.flatten() for t in ts]) if ts else torch.empty(0)
    assert_same_values(got, want)


@KERNEL_SETTINGS
@given(
    shape_list=shape_lists,
    srcs=st.lists(st.sampled_from(ALL_DTYPES), min_size=1, max_size=4),
    dst=st.sampled_from(ALL_DTYPES),
    seed=seeds,
)
def test_flatten_casts_mixed_dtypes_into_out(backend, shape_list, srcs, dst, seed):
    gen = generator(seed)
    kinds = [srcs[i % len(srcs)] for i in range(len(shape_list))]
    ts = [_source(s, k, dst, gen, backend) for s, k in zip(shape_list, kinds, strict=True)]
    total = sum(t.numel() for t in ts)
    out = values((total,), dst, dst, gen)  # garbage that must be overwritten
    assert ops.flatten(ts, out=out) is out
    want = torch.cat([ref_cast(t.reshape(-1), dst) for t in ts]) if ts else torch.empty(0, dtype=dst)
    assert_same_values(out, want)
    assert_same_values(ops.flatten(ts, dtype=dst), want)


def test_flatten_of_nothing_and_of_empty_tensors(backend):
    assert ops.flatten([]).shape == (0,)
    assert ops.flatten([], dtype=torch.float64).dtype == torch.float64
    got = ops.flatten([torch.empty(0, 3), torch.tensor(2.5), torch.empty(0)])
    assert_same_values(got, torch.tensor([2.5]))


@KERNEL_SETTINGS
@given(shape_list=shape_lists, src=st.sampled_from(ALL_DTYPES), dst=st.sampled_from(ALL_DTYPES), seed=seeds)
def test_unflatten_copy_writes_each_piece_with_its_shape(backend, shape_list, src, dst, seed):
    gen = generator(seed)
    flat = _source((sum(_numel(s) for s in shape_list),), src, dst, gen, backend)
    targets = [values(s, dst, dst, gen) for s in shape_list]  # garbage that must be overwritten
    ops.unflatten_(flat, targets, mode="copy")
    offset = 0
    for t in targets:
        piece = flat[offset : offset + t.numel()].reshape(t.shape)
        assert_same_values(t, ref_cast(piece, dst))
        offset += t.numel()


def test_unflatten_after_flatten_round_trips_exactly(backend):
    gen = generator(3)
    ts = [values(s, torch.float32, torch.float32, gen) for s in [(3, 4), (), (0,), (1001,), (2, 1, 5)]]
    copies = [torch.full_like(t, float("nan")) for t in ts]
    ops.unflatten_(ops.flatten(ts), copies)
    for a, b in zip(copies, ts, strict=True):
        assert_same_values(a, b)


@KERNEL_SETTINGS
@given(
    shape_list=shape_lists,
    src=st.sampled_from(FLOAT_DTYPES),
    dst=st.sampled_from(FLOAT_DTYPES),
    mode=st.sampled_from(["add", "sub"]),
    seed=seeds,
)
def test_unflatten_add_and_sub_match_wide_arithmetic(backend, shape_list, src, dst, mode, seed):
    gen = generator(seed)
    flat = float_data((sum(_numel(s) for s in shape_list),), src, gen)
    targets = [float_data(s, dst, gen) for s in shape_list]
    before = [t.to(torch.float64, copy=True) for t in targets]
    ops.unflatten_(flat, targets, mode=mode)
    sign = 1.0 if mode == "add" else -1.0
    offset = 0
    for t, b in zip(targets, before, strict=True):
        piece = flat[offset : offset + t.numel()].double().reshape(t.shape)
        # The wide result is rounded once into dst; allow one more rounding of the source.
        assert_within(t, b + sign * piece, b.abs() + piece.abs(), 2 * eps(src) + 2 * eps(torch.float32))
        offset += t.numel()


def test_unflatten_add_keeps_special_values(backend):
    t = torch.tensor([1.0, float("inf"), -0.0, 0.0, 2.0])
    ops.unflatten_(torch.tensor([float("nan"), 1.0, -0.0, -0.0, float("-inf")]), [t], mode="add")
    assert t[0].isnan() and t[1] == float("inf") and t[4] == float("-inf")
    assert_same_values(t[2:4], torch.tensor([-0.0, 0.0]))


@pytest.mark.parametrize("dtypes", [[torch.float16, torch.float32, torch.int64, torch.bool, torch.bfloat16]])
def test_pack_writes_each_tensor_at_its_offset_and_nothing_else(backend, dtypes):
    gen = generator(5)
    ts = [values((7,), torch.float32, dt, gen) for dt in dtypes[:3]]
    ts += [torch.tensor([True, False, True]), values((2, 3), torch.float32, torch.bfloat16, gen)]
    offsets, pos = [], 0
    for t, dt in zip(ts, dtypes, strict=True):
        size = torch.empty((), dtype=dt).element_size()
        pos = -(-pos // size) * size + size  # aligned, with a gap before each tensor
        offsets.append(pos)
        pos += t.numel() * size
    out = torch.full((pos + 5,), 0xAB, dtype=torch.uint8)
    ops.pack(ts, offsets, dtypes, out=out)
    expected = torch.full_like(out, 0xAB)
    for t, off, dt in zip(ts, offsets, dtypes, strict=True):
        raw = ref_cast(t.reshape(-1), dt).view(torch.uint8)
        expected[off : off + raw.numel()] = raw
    assert torch.equal(out, expected)


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n

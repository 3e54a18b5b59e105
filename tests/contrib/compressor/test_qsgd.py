"""QSGD's paper properties (Alistarh et al. 2017, Lemma 3.1) and FedLab 1.3's QSGD bugs, fixed.

Draws are many encodes of one fixed vector; the statistics are exact identities in expectation, so
the bounds used here hold with a wide margin at these sample sizes.
"""

from __future__ import annotations

import math
import struct

import pytest
import torch

from fastfl.contrib.compressor import QSGDCompressor
from fastfl.errors import KernelArgumentError

N = 1000


def _draws(s: int, count: int, seed: int = 0, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    comp = QSGDCompressor(s=s, seed=seed)
    qs = torch.stack([comp.decode(comp.encode(v), (n,), torch.float64) for _ in range(count)])
    return v, qs


@pytest.mark.parametrize("s", [1, 4, 127])
def test_unbiased_bias_shrinks_as_one_over_sqrt_draws(s):
    v, qs = _draws(s, 4096)
    per_draw = float(((qs - v) ** 2).sum(1).mean())  # E||Q - v||^2
    few, many = qs[:256].mean(0), qs.mean(0)
    err_few, err_many = float(((few - v) ** 2).sum()), float(((many - v) ** 2).sum())
    # E||mean_D - v||^2 = E||Q - v||^2 / D for an unbiased Q: 16x smaller for 16x the draws,
    # i.e. the bias shrinks as 1/sqrt(draws).
    assert err_few == pytest.approx(per_draw / 256, rel=0.3)
    assert err_many == pytest.approx(per_draw / 4096, rel=0.3)
    assert 8 < err_few / err_many < 32


@pytest.mark.parametrize("s", [1, 2, 16, 127])
def test_variance_within_the_papers_bound(s):
    v, qs = _draws(s, 512)
    variance = float(((qs - v) ** 2).sum(1).mean())
    bound = min(N / s**2, math.sqrt(N) / s) * float((v**2).sum())
    assert variance <= bound
    nonzeros = float((qs != 0).sum(1).double().mean())
    assert nonzeros <= s * (s + math.sqrt(N))  # E||Q(v)||_0 <= s(s + sqrt(n))


def test_zero_vector_gives_zero_not_nan():
    # FedLab 1.3: norm = max|v| = 0, then v / norm = NaN.
    comp = QSGDCompressor(s=5)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        out = comp.decode(comp.encode(torch.zeros(33, dtype=dtype)), (3, 11), dtype)
        assert out.dtype == dtype and out.shape == (3, 11)
        assert not out.isnan().any() and not out.any()


def test_scale_is_the_l2_norm_not_the_max():
    # FedLab 1.3 scales by max|v| (L-infinity), not the paper's ||v||_2.
    v = torch.tensor([3.0, -4.0, 0.0])
    blob = QSGDCompressor(s=8).encode(v)
    (norm,) = struct.unpack("<d", bytes(blob[8:16].numpy()))
    assert norm == 5.0


@pytest.mark.parametrize(("s", "bits"), [(1, 2), (2, 3), (3, 3), (4, 4), (127, 8), (128, 9), (32767, 16)])
def test_codes_are_bit_packed(s, bits):
    # FedLab 1.3 sends an int32 level and a bool sign per element (5 bytes); here sign + level
    # take 1 + bit_length(s) bits, and levels stay within [0, s] (FedLab's reach s, needing
    # n_bit + 1 bits, contrary to its docstring).
    n = 1001
    v = torch.randn(n)
    blob = QSGDCompressor(s=s).encode(v)
    assert blob.numel() == 16 + (n * bits + 7) // 8
    out = QSGDCompressor(s=s).decode(blob, (n,), torch.float64)
    levels = (out.abs() * s / v.double().norm()).round()
    assert int(levels.max()) <= s


def test_same_seed_same_blob_and_state_resumes():
    v = torch.randn(500)
    a, b = QSGDCompressor(seed=3), QSGDCompressor(seed=3)
    assert torch.equal(a.encode(v), b.encode(v))
    saved = a.state_dict()
    first = a.encode(v)
    c = QSGDCompressor(seed=99)
    c.load_state_dict(saved)
    assert torch.equal(c.encode(v), first)
    assert not torch.equal(a.encode(v), first)  # a new seed each encode


def test_bad_levels_are_rejected():
    with pytest.raises(KernelArgumentError, match="s \\(QSGD levels\\)"):
        QSGDCompressor(s=0)
    with pytest.raises(KernelArgumentError, match="non-finite"):
        QSGDCompressor().encode(torch.tensor([1.0, float("inf")]))

"""fastfl.ops.optim on every backend (the `backend` fixture) against the torch reference (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastfl.errors import KernelArgumentError, KernelTypeError
from fastfl.ops import _torch, optim
from tests.ops.kernel_data import KERNEL_SETTINGS, seeds

sizes = st.one_of(st.integers(0, 70), st.integers(1000, 6000).map(lambda n: n | 1))
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _vecs(n: int, seed: int, count: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g) for _ in range(count)]


@KERNEL_SETTINGS
@given(n=sizes, seed=seeds, mu=st.sampled_from([0.0, 0.5]), with_lin=st.booleans())
def test_local_step_matches_the_reference(backend: str, n: int, seed: int, mu: float, with_lin: bool) -> None:
    w, g, anchor, lin = _vecs(n, seed, 4)
    lin_arg = lin if with_lin else None
    expected = w.clone()
    _torch.optim_local_step(expected, g, anchor if mu else None, lin_arg, 0.1, mu)
    optim.local_step_(w, g, 0.1, anchor=anchor, mu=mu, lin=lin_arg)
    torch.testing.assert_close(w, expected, **TOL)
    if not mu and not with_lin:
        torch.testing.assert_close(expected, _vecs(n, seed, 1)[0] - 0.1 * g, **TOL)


@KERNEL_SETTINGS
@given(n=sizes, seed=seeds, with_shift=st.booleans(), with_delta=st.booleans())
def test_control_update_matches_the_formula(
    backend: str, n: int, seed: int, with_shift: bool, with_delta: bool
) -> None:
    state, x, y, shift = _vecs(n, seed, 4)
    old = state.clone()
    expected = old - (shift if with_shift else 0) + 2.5 * (x - y)
    delta = torch.full((n,), float("nan")) if with_delta else None
    optim.control_update_(state, x, y, 2.5, shift=shift if with_shift else None, delta=delta)
    torch.testing.assert_close(state, expected, **TOL)
    if delta is not None:
        torch.testing.assert_close(delta, expected - old, **TOL)


@pytest.mark.parametrize("kind", list(optim.SERVER_OPTIMIZERS))
@KERNEL_SETTINGS
@given(n=sizes, seed=seeds)
def test_server_step_matches_the_reference(backend: str, kind: str, n: int, seed: int) -> None:
    x, d, m = _vecs(n, seed, 3)
    v = _vecs(n, seed + 1, 1)[0].abs()
    ref = [t.clone() for t in (x, d, m, v)]
    _torch.optim_server_step(*ref, optim.SERVER_OPTIMIZERS[kind], 0.3, 0.9, 0.99, 1e-3)
    optim.server_step_(x, d, m, v, kind=kind, lr=0.3, beta1=0.9, beta2=0.99, tau=1e-3)
    torch.testing.assert_close(x, ref[0], **TOL)
    torch.testing.assert_close(m, ref[2], **TOL)
    if kind != "momentum":
        torch.testing.assert_close(v, ref[3], **TOL)


def test_reference_server_optimizers_follow_reddi_et_al() -> None:
    d = torch.tensor([0.5, -2.0, 0.0])
    for kind, v_new in (
        ("adam", 0.99 * 0.04 + 0.01 * d * d),
        ("yogi", 0.04 - 0.01 * d * d * torch.sign(0.04 - d * d)),
        ("adagrad", 0.04 + d * d),
    ):
        x, m, v = torch.ones(3), torch.zeros(3), torch.full((3,), 0.04)
        optim.server_step_(x, d, m, v, kind=kind, lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
        torch.testing.assert_close(v, v_new)
        torch.testing.assert_close(x, 1 + 0.1 * (0.1 * d) / (v_new.sqrt() + 1e-3))
    x, m = torch.ones(3), torch.full((3,), 2.0)
    optim.server_step_(x, d, m, kind="momentum", lr=0.5, beta1=0.9)
    torch.testing.assert_close(x, 1 + 0.5 * (1.8 + d))


def test_threaded_sizes_match(backend: str) -> None:
    w, g, anchor, lin = _vecs(600_001, 7, 4)
    expected = w.clone()
    _torch.optim_local_step(expected, g, anchor, lin, 0.05, 0.3)
    optim.local_step_(w, g, 0.05, anchor=anchor, mu=0.3, lin=lin)
    torch.testing.assert_close(w, expected, **TOL)


def test_bad_arguments_are_named() -> None:
    w, g = torch.zeros(4), torch.zeros(4)
    with pytest.raises(KernelTypeError, match="g"):
        optim.local_step_(w, g.double(), 0.1)
    with pytest.raises(KernelArgumentError, match="anchor"):
        optim.local_step_(w, g, 0.1, mu=1.0)
    with pytest.raises(KernelArgumentError, match="lin"):
        optim.local_step_(w, g, 0.1, lin=torch.zeros(5))
    with pytest.raises(KernelArgumentError, match="contiguous"):
        optim.control_update_(torch.zeros(4, 2).t(), torch.zeros(8), torch.zeros(8), 1.0)
    with pytest.raises(KernelArgumentError, match="kind"):
        optim.server_step_(w, g, torch.zeros(4), kind="sgd", lr=1.0)
    with pytest.raises(KernelArgumentError, match="v"):
        optim.server_step_(w, g, torch.zeros(4), kind="adam", lr=1.0)
    with pytest.raises(KernelArgumentError, match="lr"):
        optim.local_step_(w, g, float("nan"))

"""Exact-answer tests on least-squares clients with a known optimum (algorithms.md 2.3)."""

from __future__ import annotations

import pytest
import torch

from tests.contrib.algorithm._quadratic import make_clients, run, weighted_optimum


def _error(name: str, spread: float = 1.0, epochs: int = 5, rounds: int = 100, **kw: object) -> float:
    data, slices, optimum = make_clients(spread=spread)
    x, _, _ = run(name, data, slices, rounds=rounds, epochs=epochs, **kw)  # type: ignore[arg-type]
    return float((x - optimum).norm())


def test_fedavg_converges_to_a_biased_point_that_moves_with_heterogeneity_and_local_steps() -> None:
    homogeneous = _error("fedavg", spread=0.0)
    mild, strong = _error("fedavg", spread=0.5), _error("fedavg", spread=1.0)
    one_step, many_steps = _error("fedavg", epochs=1, rounds=250), _error("fedavg", epochs=10)
    assert homogeneous < 1e-5  # one shared optimum: no drift
    assert 0.05 < mild < strong  # the bias grows with the spread of the client optima
    assert one_step < 1e-5 < many_steps  # one local step is gradient descent on the global loss


def test_fedavg_fixed_point_is_stable_so_the_bias_is_not_slow_convergence() -> None:
    assert _error("fedavg", rounds=100) == pytest.approx(_error("fedavg", rounds=200), rel=1e-4)


def test_scaffold_converges_to_the_optimum_despite_heterogeneity() -> None:
    assert _error("scaffold", spread=1.0, epochs=10, rounds=150) < 1e-5


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_feddyn_converges_to_the_optimum(alpha: float) -> None:
    kw = {"trainer_kw": {"alpha": alpha}, "handler_kw": {"alpha": alpha}}
    assert _error("feddyn", rounds=300, **kw) < 1e-5


def test_feddyn_local_regulariser_has_a_gradient() -> None:
    # FedLab's FedDyn builds the regulariser from detached parameters: its client steps equal FedAvg's.
    data, slices, _ = make_clients()
    avg, _, _ = run("fedavg", data, slices, rounds=1)
    dyn, _, _ = run("feddyn", data, slices, rounds=1, trainer_kw={"alpha": 1.0}, handler_kw={"alpha": 1.0})
    assert not torch.allclose(avg, dyn)


def test_fedprox_with_mu_zero_equals_fedavg_bit_for_bit() -> None:
    data, slices, _ = make_clients()
    avg, _, _ = run("fedavg", data, slices, rounds=5)
    prox, _, _ = run("fedprox", data, slices, rounds=5, trainer_kw={"mu": 0.0})
    assert torch.equal(avg, prox)


def test_fedprox_with_large_mu_takes_one_gradient_step_of_the_global_loss() -> None:
    # The local solution of f_i(w) + mu/2 ||w - x||^2 is x - grad f_i(x) / mu + O(1/mu^2): the
    # average is one step of size 1/mu on the global loss.
    data, slices, _ = make_clients()
    mu = 200.0
    prox, _, _ = run("fedprox", data, slices, rounds=1, lr=0.5 / mu, epochs=60, trainer_kw={"mu": mu})
    x, y = data.tensors[0].double(), data.tensors[1].double()
    step = -(2.0 / len(y)) * (x.T @ (-y)).reshape(-1) / mu  # x0 = 0: grad F(0) = -2/n X^T y
    assert float((prox - step).norm()) < 0.05 * float(step.norm())


def test_weighted_optimum_helper_matches_lstsq_for_equal_sizes() -> None:
    data, slices, optimum = make_clients()
    assert torch.allclose(weighted_optimum(data, slices, [1.0] * len(slices)), optimum, atol=1e-10)

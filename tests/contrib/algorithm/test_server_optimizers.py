"""FedAvgM and FedOpt (Adam, Yogi, Adagrad): the server step on the averaged change."""

from __future__ import annotations

import pytest
import torch

from tests.contrib.algorithm._quadratic import make_clients, run


def test_fedavgm_without_momentum_and_unit_lr_is_fedavg() -> None:
    data, slices, _ = make_clients()
    fedavg, _, _ = run("fedavg", data, slices, rounds=4)
    avgm, _, _ = run("fedavgm", data, slices, rounds=4, handler_kw={"momentum": 0.0, "server_lr": 1.0})
    torch.testing.assert_close(avgm, fedavg, rtol=0, atol=1e-6)


def test_fedavgm_accumulates_the_pseudo_gradients() -> None:
    data, slices, _ = make_clients()
    x1, _, _ = run("fedavg", data, slices, rounds=1)  # first change: Delta_1 = x1 - 0
    x_m, _, handler = run("fedavgm", data, slices, rounds=1, handler_kw={"momentum": 0.9, "server_lr": 0.5})
    torch.testing.assert_close(x_m, 0.5 * x1, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(handler.m.double(), x1, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("option", ["adam", "yogi", "adagrad"])
def test_fedopt_first_step_follows_reddi_et_al(option: str) -> None:
    data, slices, _ = make_clients()
    x1, _, _ = run("fedavg", data, slices, rounds=1)
    tau, lr, b1, b2 = 1e-3, 0.1, 0.9, 0.99
    hk = {"option": option, "server_lr": lr, "beta1": b1, "beta2": b2, "tau": tau}
    x_opt, _, _ = run("fedopt", data, slices, rounds=1, handler_kw=hk)
    d, v0 = x1, tau * tau
    v = {"adam": b2 * v0 + (1 - b2) * d * d, "adagrad": v0 + d * d}.get(option)
    if v is None:
        v = v0 - (1 - b2) * d * d * torch.sign(v0 - d * d)
    expected = lr * (1 - b1) * d / (v.sqrt() + tau)
    torch.testing.assert_close(x_opt, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("option", ["adam", "yogi", "adagrad"])
def test_fedopt_reaches_the_neighbourhood_of_the_fedavg_fixed_point(option: str) -> None:
    data, slices, optimum = make_clients(
        spread=0.0, center=1.0
    )  # homogeneous: the fixed point is the optimum
    hk = {"option": option, "server_lr": 0.2, "tau": 1e-2}
    x, _, _ = run("fedopt", data, slices, rounds=150, handler_kw=hk)
    assert float((x - optimum).norm()) < 1e-3 * float(optimum.norm())

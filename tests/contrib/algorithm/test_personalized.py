"""Ditto and Per-FedAvg on least-squares clients: closed-form personal models and fixed points."""

from __future__ import annotations

import pytest
import torch

from tests.contrib.algorithm._quadratic import client_quadratics, make_clients, run


def _solve(coefs: list[torch.Tensor], quads: list) -> torch.Tensor:
    return torch.linalg.solve(sum(coefs), sum(c @ b for c, (_, b) in zip(coefs, quads, strict=True)))


def test_ditto_global_copy_is_fedavg_and_personal_models_solve_the_proximal_problem() -> None:
    data, slices, _ = make_clients(spread=1.0)
    lam = 0.5
    fedavg, _, _ = run("fedavg", data, slices, rounds=150)
    ditto, trainer, _ = run("ditto", data, slices, rounds=150, trainer_kw={"lam": lam})
    assert torch.equal(ditto, fedavg)
    eye = torch.eye(ditto.numel(), dtype=torch.float64)
    for client, (a, b) in enumerate(client_quadratics(data, slices)):
        # argmin f_i(v) + lam/2 ||v - x||^2 = (A_i + lam I)^-1 (A_i b_i + lam x)
        expected = torch.linalg.solve(a + lam * eye, a @ b + lam * ditto)
        assert float((trainer.personal_model(client).double() - expected).norm()) < 1e-4


def test_ditto_personal_model_is_the_global_one_for_huge_lambda_and_local_for_zero() -> None:
    data, slices, _ = make_clients(spread=1.0)
    quads = client_quadratics(data, slices)
    x, trainer, _ = run("ditto", data, slices, rounds=100, lr=0.002, trainer_kw={"lam": 400.0})
    assert float((trainer.personal_model(0).double() - x).norm()) < 0.02 * float(x.norm())
    _, trainer, _ = run("ditto", data, slices, rounds=150, trainer_kw={"lam": 0.0})
    assert float((trainer.personal_model(1).double() - quads[1][1]).norm()) < 1e-4
    with pytest.raises(KeyError, match="no personal model"):
        run("ditto", data, slices, rounds=0)[1].personal_model(0)


def test_perfedavg_without_adaptation_is_fedavg() -> None:
    data, slices, _ = make_clients()
    fedavg, _, _ = run("fedavg", data, slices, rounds=3, epochs=2)
    fo, _, _ = run(
        "perfedavg", data, slices, rounds=3, epochs=4, trainer_kw={"alpha": 0.0}
    )  # 2 batches a step
    hf, _, _ = run("perfedavg", data, slices, rounds=3, epochs=6, trainer_kw={"alpha": 0.0, "variant": "hf"})
    torch.testing.assert_close(fo, fedavg, rtol=0, atol=1e-6)
    torch.testing.assert_close(hf, fedavg, rtol=0, atol=1e-6)


def test_perfedavg_hf_finds_the_per_fedavg_optimum_and_fo_its_first_order_point() -> None:
    data, slices, _ = make_clients(spread=1.0)
    quads = client_quadratics(data, slices)
    alpha = 0.1
    eye = torch.eye(quads[0][0].shape[0], dtype=torch.float64)
    # F_i(w) = f_i(w - alpha grad f_i(w)) = 1/2 (w - b_i)^T (I - alpha A_i) A_i (I - alpha A_i) (w - b_i)
    per_fedavg = _solve([(eye - alpha * a) @ a @ (eye - alpha * a) for a, _ in quads], quads)
    first_order = _solve([a @ (eye - alpha * a) for a, _ in quads], quads)  # sum_i grad f_i(tmp_i) = 0
    kw = {"rounds": 300, "lr": 0.1}
    hf, _, _ = run("perfedavg", data, slices, epochs=3, trainer_kw={"alpha": alpha, "variant": "hf"}, **kw)
    fo, trainer, _ = run("perfedavg", data, slices, epochs=2, trainer_kw={"alpha": alpha}, **kw)
    assert float((hf - per_fedavg).norm()) < 1e-3
    assert float((fo - first_order).norm()) < 1e-4
    assert float((per_fedavg - first_order).norm()) > 0.05  # the two points differ: the test tells them apart
    adapted = trainer.adapt(0, fo.float()).double()
    a, b = quads[0]
    torch.testing.assert_close(adapted, fo - alpha * a @ (fo - b), rtol=1e-4, atol=1e-5)

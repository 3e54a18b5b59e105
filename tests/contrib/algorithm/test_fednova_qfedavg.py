"""FedNova removes the objective inconsistency of unequal local work; q = 0 q-FedAvg is FedAvg."""

from __future__ import annotations

import torch

from tests.contrib.algorithm._quadratic import (
    client_quadratics,
    local_gd_maps,
    make_clients,
    run,
    weighted_optimum,
)

TAUS = [1, 2, 5, 10]
LR = 0.02


def _fixed_point(quads: list, coefs: list[torch.Tensor]) -> torch.Tensor:
    """Solve sum_i C_i (x - b_i) = 0."""
    lhs = sum(coefs)
    rhs = sum(c @ b for c, (_, b) in zip(coefs, quads, strict=True))
    return torch.linalg.solve(lhs, rhs)


def test_fednova_removes_the_objective_inconsistency_of_unequal_local_steps() -> None:
    data, slices, optimum = make_clients(clients=4, spread=1.0)
    quads = client_quadratics(data, slices)
    maps = local_gd_maps(quads, LR, TAUS)
    eye = torch.eye(maps[0].shape[0], dtype=torch.float64)
    # Exact fixed points: FedAvg sum_i (I - M_i)(x - b_i) = 0; FedNova sum_i (I - M_i)/tau_i (x - b_i) = 0.
    fedavg_point = _fixed_point(quads, [eye - m for m in maps])
    fednova_point = _fixed_point(quads, [(eye - m) / t for m, t in zip(maps, TAUS, strict=True)])
    kw = {"rounds": 250, "lr": LR, "trainer_kw": {"local_epochs": TAUS.__getitem__}}
    fedavg, _, _ = run("fedavg", data, slices, **kw)
    fednova, _, _ = run("fednova", data, slices, **kw)
    assert float((fedavg - fedavg_point).norm()) < 1e-4
    assert float((fednova - fednova_point).norm()) < 1e-4
    # FedAvg drifts to (nearly) the tau-weighted optimum; FedNova's point is the true one up to O(lr).
    tau_weighted = weighted_optimum(data, slices, [float(t) for t in TAUS])
    assert float((fedavg - tau_weighted).norm()) < 0.2 * float((fedavg - optimum).norm())
    assert float((fednova - optimum).norm()) < 0.25 * float((fedavg - optimum).norm())


def test_fednova_with_equal_local_steps_is_fedavg() -> None:
    data, slices, _ = make_clients()
    fedavg, _, _ = run("fedavg", data, slices, rounds=5)
    fednova, _, _ = run("fednova", data, slices, rounds=5)
    torch.testing.assert_close(fednova, fedavg, rtol=0, atol=1e-6)


def test_fednova_partial_participation_is_not_scaled_by_n_over_k() -> None:
    # FedLab's weighted_scale multiplies the step by N/K: with 1 of 4 clients, 4x too far.
    data, slices, _ = make_clients()
    kw = {"rounds": 1, "sample_ratio": 0.25, "seed": 2}
    fedavg, _, _ = run("fedavg", data, slices, **kw)
    fednova, _, _ = run("fednova", data, slices, **kw)
    torch.testing.assert_close(fednova, fedavg, rtol=0, atol=1e-6)


def test_qfedavg_with_q_zero_is_uniform_fedavg() -> None:
    data, slices, _ = make_clients(sizes=[10, 20, 30, 40])
    fedavg, _, _ = run("fedavg", data, slices, rounds=4, handler_kw={"weighted": False})
    qfed, _, _ = run("qfedavg", data, slices, rounds=4, trainer_kw={"q": 0.0})
    torch.testing.assert_close(qfed, fedavg, rtol=0, atol=1e-5)


def test_qfedavg_uses_the_loss_at_the_received_model() -> None:
    data, slices, _ = make_clients(sizes=[10, 20, 30, 40])
    _, trainer, _ = run("qfedavg", data, slices, rounds=1, trainer_kw={"q": 1.0})
    y = data.tensors[1]
    for client, s in enumerate(slices):  # the global model starts at zero: F_k = mean y^2
        expected = float((y[s] ** 2).mean())
        assert abs(trainer.start_losses[client] - expected) < 1e-5 * max(expected, 1.0)
    assert trainer.uplink_package[-1].dtype == torch.float64


def test_qfedavg_update_matches_the_reference_formula() -> None:
    data, slices, _ = make_clients(sizes=[10, 20, 30, 40])
    q, lr = 2.0, 0.05
    fedavg_rows = run("fedavg", data, slices, rounds=1, lr=lr, handler_kw={"weighted": False})[1].param_list
    trained = [r.double().clone() for r in fedavg_rows]
    x_q, trainer, _ = run("qfedavg", data, slices, rounds=1, lr=lr, trainer_kw={"q": q})
    big_l = 1.0 / lr
    deltas, hs = [], []
    for k, theta in enumerate(trained):
        loss = trainer.start_losses[k]
        dw = big_l * (0 - theta)
        deltas.append(loss**q * dw)
        hs.append(q * loss ** (q - 1) * float(dw.square().sum()) + big_l * loss**q)
    expected = -sum(deltas) / sum(hs)
    torch.testing.assert_close(x_q, expected, rtol=1e-4, atol=1e-6)

"""Least-squares clients with a known optimum (algorithms.md 2.3), and a standalone round loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from fastfl.contrib.algorithm import get_algorithm


def make_clients(
    clients: int = 4,
    dim: int = 5,
    samples: int = 20,
    spread: float = 1.0,
    seed: int = 0,
    sizes: list[int] | None = None,
    center: float = 0.0,
) -> tuple[TensorDataset, list[list[int]], Tensor]:
    """Client i: f_i(x) = mean (X_i x - X_i b_i)^2, b_i = center + spread N(0, I).

    Returns (dataset, slices, optimum of the n-weighted sum).
    """
    g = torch.Generator().manual_seed(seed)
    sizes = sizes or [samples] * clients
    xs, ys, slices, start = [], [], [], 0
    for i in range(clients):
        scale = torch.linspace(0.5, 1.5, dim)[torch.randperm(dim, generator=g)]
        x = torch.randn(sizes[i], dim, generator=g, dtype=torch.float64) * scale.double()
        b = center + spread * torch.randn(dim, generator=g, dtype=torch.float64)
        xs.append(x)
        ys.append(x @ b)
        slices.append(list(range(start, start + sizes[i])))
        start += sizes[i]
    big_x, big_y = torch.cat(xs), torch.cat(ys)
    optimum = torch.linalg.lstsq(big_x, big_y[:, None]).solution.reshape(-1)
    data = TensorDataset(big_x.float(), big_y.float()[:, None])
    return data, slices, optimum


def weighted_optimum(data: TensorDataset, slices: list[list[int]], weights: list[float]) -> Tensor:
    """argmin sum_i weights[i] f_i for the least-squares clients (f_i = mean over client i)."""
    x, y = data.tensors[0].double(), data.tensors[1].double()
    a = sum(w * x[s].T @ x[s] / len(s) for w, s in zip(weights, slices, strict=True))
    rhs = sum(w * x[s].T @ y[s] / len(s) for w, s in zip(weights, slices, strict=True))
    return torch.linalg.solve(a, rhs).reshape(-1)


def run(
    name: str,
    data: TensorDataset,
    slices: list[list[int]],
    *,
    rounds: int,
    epochs: int = 5,
    lr: float = 0.05,
    trainer_kw: dict[str, Any] | None = None,
    handler_kw: dict[str, Any] | None = None,
    sample_ratio: float = 1.0,
    seed: int = 0,
) -> tuple[Tensor, Any, Any]:
    """Run `rounds` standalone rounds of algorithm `name` with full-batch local GD; return (x, trainer, handler)."""
    algo = get_algorithm(name)
    dim = data.tensors[0].shape[1]
    torch.manual_seed(seed)
    model = nn.Linear(dim, 1, bias=False)
    nn.init.zeros_(model.weight)
    handler = algo.handler(
        model, rounds, sample_ratio, seed=seed, **algo.handler_kwargs(**(handler_kw or {}))
    )
    handler.client_num_in_total = len(slices)
    batch = max(len(s) for s in slices)
    args = {"epochs": epochs, "batch_size": batch, "lr": lr, "shuffle": False}
    trainer_kw = dict(trainer_kw or {})
    extra = {k: trainer_kw.pop(k) for k in list(trainer_kw) if k not in algo.hparams}  # e.g. local_epochs
    trainer = algo.serial_trainer(
        nn.Linear(dim, 1, bias=False), data, slices, args=args, seed=seed, criterion=nn.MSELoss(),
        **algo.trainer_kwargs(**trainer_kw), **extra,
    )  # fmt: skip
    while not handler.if_stop:
        ids = handler.sample_clients()
        trainer.local_process(ids, handler.downlink_package)
        handler._update_global_model(trainer.uplink_package)
    return handler.model_parameters.double(), trainer, handler


def client_quadratics(data: TensorDataset, slices: list[list[int]]) -> list[tuple[Tensor, Tensor]]:
    """Per client (A_i, b_i) with f_i(x) = 1/2 (x - b_i)^T A_i (x - b_i) + const (float64)."""
    x, y = data.tensors[0].double(), data.tensors[1].double().reshape(-1)
    out = []
    for s in slices:
        a = 2.0 * x[s].T @ x[s] / len(s)
        b = torch.linalg.solve(a, 2.0 * x[s].T @ y[s] / len(s))
        out.append((a, b))
    return out


def local_gd_maps(quads: list[tuple[Tensor, Tensor]], lr: float, steps: list[int]) -> list[Tensor]:
    """M_i = (I - lr A_i)^steps_i: after the local GD steps, y_i - b_i = M_i (x - b_i)."""
    eye = torch.eye(quads[0][0].shape[0], dtype=torch.float64)
    return [torch.linalg.matrix_power(eye - lr * a, t) for (a, _), t in zip(quads, steps, strict=True)]

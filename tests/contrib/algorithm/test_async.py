"""FedAsync and FedBuff: the papers' staleness functions at tabulated values, buffered steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fastfl.contrib.algorithm import (
    AsyncServerHandler,
    FedAsyncSerialClientTrainer,
    FedBuffSerialClientTrainer,
    FedBuffServerHandler,
    fedasync_staleness,
    fedbuff_staleness,
)
from fastfl.errors import UpdateFormatError
from tests.contrib.algorithm._quadratic import make_clients, run


@pytest.mark.parametrize(
    ("strategy", "s", "a", "b", "expected"),
    [
        ("constant", 7, 10, 4, 1.0),
        ("hinge", 4, 10, 4, 1.0),  # s <= b: no discount
        ("hinge", 5, 10, 4, 1 / 11),  # paper 1/(a(s-b)+1); FedLab's 1/(a((s-b)+1)) gives 1/20
        ("hinge", 10, 10, 4, 1 / 61),
        ("hinge", 6, 0.5, 2, 1 / 3),
        ("polynomial", 3, 0.5, 4, 1 / 2),  # (s+1)^-a
        ("polynomial", 0, 0.5, 4, 1.0),
        ("polynomial", 7, 1.0, 4, 1 / 8),
    ],
)
def test_fedasync_staleness_matches_the_paper(
    strategy: str, s: float, a: float, b: float, expected: float
) -> None:
    assert fedasync_staleness(strategy, s, a, b) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("s", "expected"), [(0, 1.0), (3, 0.5), (8, 1 / 3), (1, 1 / math.sqrt(2))])
def test_fedbuff_staleness_is_one_over_sqrt_one_plus_s(s: float, expected: float) -> None:
    assert fedbuff_staleness(s) == pytest.approx(expected, rel=1e-12)


def test_staleness_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="staleness"):
        fedbuff_staleness(-1)
    with pytest.raises(ValueError, match="strategy"):
        fedasync_staleness("linear", 1)


def test_fedasync_handler_mixes_with_alpha_times_the_staleness_function() -> None:
    handler = AsyncServerHandler(nn.Linear(3, 1, bias=False), 100, alpha=0.6, strategy="hinge", a=10, b=4)
    nn.init.zeros_(handler.model.weight)
    handler.time = 9
    handler._update_global_model([torch.ones(3), torch.tensor([4.0])])  # staleness 5
    assert handler.last_alpha == pytest.approx(0.6 / 11)
    torch.testing.assert_close(handler.model_parameters, torch.full((3,), 0.6 / 11))
    state = handler.state_dict()
    other = AsyncServerHandler(nn.Linear(3, 1, bias=False), 100)
    other.load_state_dict(state)
    assert other.time == 10 and torch.equal(other.model_parameters, handler.model_parameters)


def _fedbuff(buffer_size: int, server_lr: float = 1.0) -> FedBuffServerHandler:
    model = nn.Linear(3, 1, bias=False)
    nn.init.zeros_(model.weight)
    return FedBuffServerHandler(model, 100, buffer_size=buffer_size, server_lr=server_lr)


def test_fedbuff_steps_after_k_updates_with_staleness_weights() -> None:
    handler = _fedbuff(3, server_lr=0.5)
    info = torch.tensor([1.0, 10.0], dtype=torch.float64)
    assert not handler._update_global_model([torch.ones(3), info])
    assert not handler._update_global_model([2 * torch.ones(3), info])
    assert torch.equal(handler.model_parameters, torch.zeros(3)) and handler.time == 1
    assert handler._update_global_model([3 * torch.ones(3), info])
    torch.testing.assert_close(handler.model_parameters, torch.full((3,), 0.5 * 6 / 3))
    assert handler.time == 2
    handler._update_global_model([torch.ones(3), info])  # trained from time 1, now 2: staleness 1
    assert handler.last_weight == pytest.approx(1 / math.sqrt(2))
    saved = handler.state_dict()
    resumed = _fedbuff(3, server_lr=0.5)
    resumed.load_state_dict(saved)
    for h in (handler, resumed):
        h._update_global_model([torch.ones(3), torch.tensor([2.0, 1.0], dtype=torch.float64)])
        h._update_global_model([torch.ones(3), torch.tensor([2.0, 1.0], dtype=torch.float64)])
    assert resumed.time == handler.time == 3
    assert torch.equal(resumed.model_parameters, handler.model_parameters)
    with pytest.raises(UpdateFormatError, match="FedBuff update"):
        handler._update_global_model([torch.ones(3)])


def test_fedbuff_with_a_full_buffer_of_fresh_updates_is_uniform_fedavg() -> None:
    data, slices, _ = make_clients()
    fedavg, _, _ = run("fedavg", data, slices, rounds=3, handler_kw={"weighted": False})
    model = nn.Linear(5, 1, bias=False)
    nn.init.zeros_(model.weight)
    handler = FedBuffServerHandler(model, 100, buffer_size=4)
    order = [0, 1, 2, 3] * 3
    trainer = FedBuffSerialClientTrainer(
        nn.Linear(5, 1, bias=False), data, slices, args={"epochs": 5, "batch_size": 20, "lr": 0.05, "shuffle": False},
        criterion=nn.MSELoss(),
    )  # fmt: skip
    for start in range(0, len(order), 4):
        payload = [t.clone() for t in handler.downlink_package]
        for client in order[start : start + 4]:
            trainer.local_process([client], payload)
            handler._update_global_model(trainer.uplink_package)
    assert handler.time == 4
    torch.testing.assert_close(handler.model_parameters.double(), fedavg, rtol=0, atol=1e-6)


def test_fedasync_trainer_uploads_params_and_model_time_one_client_at_a_time() -> None:
    data, slices, _ = make_clients()
    trainer = FedAsyncSerialClientTrainer(nn.Linear(5, 1, bias=False), data, slices, criterion=nn.MSELoss())
    trainer.local_process([2], [torch.zeros(5), torch.tensor([7.0])])
    params, time = trainer.uplink_package
    assert params.shape == (5,) and time.item() == 7.0
    with pytest.raises(ValueError, match="one client per call"):
        trainer.local_process([0, 1], [torch.zeros(5), torch.tensor([7.0])])
    with pytest.raises(UpdateFormatError, match="model time"):
        trainer.local_process([0], [torch.zeros(5)])

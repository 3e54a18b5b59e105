"""state_dict / load_state_dict: a resumed run continues bit for bit."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from fastfl.contrib.algorithm import ALGORITHMS, get_algorithm
from tests.contrib.algorithm._quadratic import make_clients

SYNC = sorted(name for name, algo in ALGORITHMS.items() if not algo.asynchronous)
ARGS = {
    "epochs": 2,
    "batch_size": 7,
    "lr": 0.05,
}  # minibatches with shuffling: the sampler and shufflers matter


def _pair(name: str, data: Any, slices: Any) -> tuple[Any, Any]:
    algo = get_algorithm(name)
    torch.manual_seed(1)
    model = nn.Linear(data.tensors[0].shape[1], 1, bias=False)
    handler = algo.handler(model, 100, 0.5, seed=3, **algo.handler_kwargs())
    handler.client_num_in_total = len(slices)
    trainer = algo.serial_trainer(
        nn.Linear(data.tensors[0].shape[1], 1, bias=False), data, slices, args=dict(ARGS), seed=5,
        criterion=nn.MSELoss(), **algo.trainer_kwargs(),
    )  # fmt: skip
    return trainer, handler


def _rounds(trainer: Any, handler: Any, count: int) -> None:
    for _ in range(count):
        ids = handler.sample_clients()
        trainer.local_process(ids, handler.downlink_package)
        handler._update_global_model(trainer.uplink_package)


@pytest.mark.parametrize("name", SYNC)
def test_resumed_run_continues_bit_for_bit(name: str) -> None:
    data, slices, _ = make_clients(clients=6, samples=15)
    trainer, handler = _pair(name, data, slices)
    _rounds(trainer, handler, 3)
    saved = (trainer.state_dict(), handler.state_dict())
    _rounds(trainer, handler, 3)
    straight = handler.model_parameters

    trainer2, handler2 = _pair(name, data, slices)
    trainer2.load_state_dict(saved[0])
    handler2.load_state_dict(saved[1])
    _rounds(trainer2, handler2, 3)
    assert torch.equal(handler2.model_parameters, straight)
    assert handler2.round == handler.round == 6


def test_state_dict_mid_round_is_refused() -> None:
    data, slices, _ = make_clients(clients=4)
    trainer, handler = _pair("fedavg", data, slices)
    ids = handler.sample_clients()
    trainer.local_process(ids[:1], handler.downlink_package)
    handler._update_global_model(trainer.uplink_package)
    with pytest.raises(RuntimeError, match="middle of a round"):
        handler.state_dict()

"""Trainer plumbing: vmapped clients (batch_clients), one-client trainers, argument checks."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from fastfl.contrib.algorithm import (
    FedAvgSerialClientTrainer,
    FedProxClientTrainer,
    FedProxSerialClientTrainer,
    qFedAvgSerialClientTrainer,
)
from fastfl.contrib.algorithm._uplink import parse_uplink
from fastfl.errors import UpdateFormatError
from tests.contrib.algorithm._quadratic import make_clients

ARGS = {"epochs": 2, "batch_size": 5, "lr": 0.05}


def _serial(cls: type, data: object, slices: list, **kw: object) -> object:
    return cls(
        nn.Linear(5, 1, bias=False), data, slices, args=dict(ARGS), seed=3, criterion=nn.MSELoss(), **kw
    )


@pytest.mark.parametrize("cls", [FedAvgSerialClientTrainer, qFedAvgSerialClientTrainer])
def test_batch_clients_vmaps_plain_sgd_algorithms_with_the_same_result(cls: type) -> None:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(60, 5, generator=g), torch.randint(0, 3, (60,), generator=g))
    slices = [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 35)),
        list(range(35, 45)),
        list(range(45, 60)),
    ]
    x = torch.randn(18)
    one = cls(nn.Linear(5, 3), data, slices, args=dict(ARGS), seed=3)
    vmapped = cls(nn.Linear(5, 3), data, slices, args=dict(ARGS), seed=3, batch_clients=3)
    one.local_process([0, 1, 2, 3, 4], [x])
    vmapped.local_process([0, 1, 2, 3, 4], [x])
    assert vmapped._vectorized is not None  # it really took the vmapped path
    for a, b in zip(one.uplink_package, vmapped.uplink_package, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_batch_clients_falls_back_for_corrected_steps_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    data, slices, _ = make_clients()
    trainer = _serial(FedProxSerialClientTrainer, data, slices, batch_clients=4, mu=0.1)
    with caplog.at_level(logging.WARNING, logger="fastfl.client"):
        trainer.local_process([0, 1], [torch.zeros(5)])
    assert "not plain SGD" in caplog.text
    assert trainer._vectorized is None


def test_one_client_trainer_equals_the_serial_trainer_on_the_same_batches() -> None:
    data, slices, _ = make_clients()
    args = {"epochs": 2, "batch_size": 20, "lr": 0.05, "shuffle": False}
    serial = FedProxSerialClientTrainer(
        nn.Linear(5, 1, bias=False), data, slices, args=args, criterion=nn.MSELoss(), mu=0.5
    )
    loader = DataLoader(Subset(data, slices[1]), batch_size=20)
    single = FedProxClientTrainer(
        nn.Linear(5, 1, bias=False), loader, args=args, criterion=nn.MSELoss(), mu=0.5
    )
    x = torch.randn(5)
    serial.local_process([1], [x])
    single.local_process([x])
    assert single.type != serial.type
    torch.testing.assert_close(single.uplink_package[0], serial.uplink_package[0])
    assert single.uplink_package[1].tolist() == [20.0]


def test_bad_arguments_are_reported() -> None:
    data, slices, _ = make_clients()
    with pytest.raises(ValueError, match="mu"):
        _serial(FedProxSerialClientTrainer, data, slices, mu=-1.0)
    with pytest.raises(TypeError, match="float32"):
        FedAvgSerialClientTrainer(nn.Linear(5, 1).double(), data, slices)
    trainer = _serial(FedAvgSerialClientTrainer, data, slices, local_epochs=lambda c: -1)
    with pytest.raises(ValueError, match="local_epochs"):
        trainer.local_process([0], [torch.zeros(5)])
    with pytest.raises(ValueError, match="out of range"):
        trainer.local_process([9], [torch.zeros(5)])


def test_uplink_parser_names_the_mismatch() -> None:
    with pytest.raises(UpdateFormatError, match="2 vector"):
        parse_uplink([torch.zeros(4), torch.zeros(4), torch.zeros(4), torch.zeros(1)], 2, 1, 4)
    with pytest.raises(UpdateFormatError, match="info tensor"):
        parse_uplink([torch.zeros(4), torch.zeros(3)], 1, 2, 4)
    with pytest.raises(UpdateFormatError, match="same model"):
        parse_uplink([torch.zeros(5), torch.zeros(1)], 1, 1, 4)
    vectors, rows = parse_uplink([torch.zeros(4), torch.ones(4)], 1, 1, 4)  # FedLab's plain [models]
    assert rows == [[1.0], [1.0]] and len(vectors) == 2

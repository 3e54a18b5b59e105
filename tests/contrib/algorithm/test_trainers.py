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
from fastfl.core.client._fused import FusedSGD
from fastfl.core.client._vectorized import VectorizedSGD
from fastfl.errors import UpdateFormatError
from tests.contrib.algorithm._quadratic import make_clients

ARGS = {"epochs": 2, "batch_size": 5, "lr": 0.05}


def _serial(cls: type, data: object, slices: list, **kw: object) -> object:
    return cls(
        nn.Linear(5, 1, bias=False), data, slices, args=dict(ARGS), seed=3, criterion=nn.MSELoss(), **kw
    )


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("cls", [FedAvgSerialClientTrainer, qFedAvgSerialClientTrainer])
def test_batch_clients_vmaps_plain_sgd_algorithms_with_the_same_result(cls: type, fused: bool) -> None:
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
    vmapped = cls(nn.Linear(5, 3), data, slices, args=dict(ARGS), seed=3, batch_clients=3, fused=fused)
    one.local_process([0, 1, 2, 3, 4], [x])
    vmapped.local_process([0, 1, 2, 3, 4], [x])
    # it really took the batched path, fused (no autograd) or torch.func as asked
    assert type(vmapped._vectorized) is (FusedSGD if fused else VectorizedSGD)
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
    vectors, rows, clients = parse_uplink([torch.zeros(4), torch.ones(4)], 1, 1, 4)  # FedLab's plain [models]
    assert rows == [[1.0], [1.0]] and len(vectors) == clients == 2


@pytest.mark.parametrize("aggregate", [False, True])
def test_fedavg_handler_weights_the_core_trainers_uploads_by_their_metadata(aggregate: bool) -> None:
    from fastfl.contrib.algorithm import FedAvgServerHandler
    from fastfl.core.client import SubsetSerialTrainer

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g))
    slices = [list(range(10)), list(range(10, 40))]
    trainer = SubsetSerialTrainer(
        nn.Linear(5, 3), data, slices, args=dict(ARGS), aggregate=aggregate, batch_clients=None
    )
    handler = FedAvgServerHandler(nn.Linear(5, 3), 1, 1.0, seed=0)
    handler.client_num_in_total = 2
    x = handler.downlink_package[0].clone()
    trainer.local_process(handler.sample_clients(), [x])
    rows = [r.clone() for r in trainer.uplink_package]
    handler.receive_meta(trainer.uplink_meta)
    assert handler._update_global_model(trainer.uplink_package)
    counts = trainer.sample_counts
    expected = rows[0] if aggregate else (counts[0] * rows[0] + counts[1] * rows[1]) / sum(counts)
    assert sorted(counts) == [10, 30]
    torch.testing.assert_close(handler.model_parameters, expected)


def test_start_round_lets_the_caller_choose_the_clients() -> None:
    from tests.contrib.algorithm._quadratic import run

    data, slices, _ = make_clients()
    _, trainer, handler = run("fedprox", data, slices, rounds=0)
    handler.global_round = 1
    ids = handler.start_round([3, 1])
    trainer.local_process(ids, handler.downlink_package)
    assert handler._update_global_model(trainer.uplink_package)  # two updates complete the round
    assert handler.round == 1 and handler.last_round_clients == 2
    with pytest.raises(ValueError, match="start_round"):
        handler.start_round([7])


def test_training_survives_user_code_that_resets_the_gradients() -> None:
    data, slices, _ = make_clients()
    trainer = _serial(FedAvgSerialClientTrainer, data, slices)
    trainer.model.zero_grad(set_to_none=True)  # unbinds .grad from the flat gradient buffer
    x = torch.zeros(5)
    trainer.local_process([0], [x])
    assert not torch.equal(trainer.uplink_package[0], x)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["scaffold", "feddyn", "ditto"])
def test_cuda_trainers_match_the_cpu_ones(name: str) -> None:
    from fastfl.contrib.algorithm import get_algorithm

    algo = get_algorithm(name)
    data, slices, _ = make_clients()
    x = torch.randn(5)
    payload = [x, torch.randn(5)] if name == "scaffold" else [x]
    uplinks = []
    for cuda in (False, True):
        torch.manual_seed(0)
        trainer = algo.serial_trainer(
            nn.Linear(5, 1, bias=False), data, slices, cuda=cuda, args=dict(ARGS), seed=3, criterion=nn.MSELoss(),
            **algo.trainer_kwargs(),
        )  # fmt: skip
        trainer.local_process([0, 2], payload)
        uplinks.append([t.cpu() for t in trainer.uplink_package])
    for a, b in zip(*uplinks, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_batch_clients_auto_alternates_modes_with_the_same_results() -> None:
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g))
    slices = [list(range(i * 10, i * 10 + 10)) for i in range(4)]
    torch.manual_seed(0)
    one = FedAvgSerialClientTrainer(nn.Linear(5, 3), data, slices, args=dict(ARGS), seed=3)
    auto = FedAvgSerialClientTrainer(
        nn.Linear(5, 3), data, slices, args=dict(ARGS), seed=3, batch_clients="auto"
    )
    x = torch.randn(18)
    for _ in range(4):  # one at a time, vmapped, one at a time, vmapped: then it decides
        one.local_process([0, 1, 2, 3], [x])
        auto.local_process([0, 1, 2, 3], [x])
        for a, b in zip(one.uplink_package, auto.uplink_package, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert auto._mode.decided
    prox = FedProxSerialClientTrainer(nn.Linear(5, 3), data, slices, args=dict(ARGS), batch_clients="auto")
    prox.local_process([0, 1], [x])
    assert prox._mode.choice is None  # its step cannot be vmapped: one at a time for good

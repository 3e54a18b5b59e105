"""SubsetSerialTrainer(batch_clients="auto"): both modes timed on the first rounds, the faster kept."""

from __future__ import annotations

import logging

import pytest
import torch
from torch.utils.data import Dataset

from fastfl.core.client import SubsetSerialTrainer
from fastfl.core.client._mode import AUTO, AUTO_CHUNK, ModeChooser
from fastfl.core.model_maintainer import read_params
from tests.core.client.test_vectorized import ARGS, _data, _model, _slices


class FakeClock:
    """A clock that advances by the duration the test gives each round's mode."""

    def __init__(self) -> None:
        self.now = 0.0
        self.durations: dict[int | None, float] = {}
        self.mode: int | None = None

    def __call__(self) -> float:
        return self.now

    def process(self, mode, ids, payload):
        self.now += self.durations[mode]
        return [mode]


@pytest.mark.parametrize(("serial", "vmapped", "winner"), [(1.0, 0.4, AUTO_CHUNK), (0.5, 0.9, None)])
def test_chooser_alternates_then_keeps_the_faster_mode(serial, vmapped, winner):
    clock = FakeClock()
    clock.durations = {None: serial, AUTO_CHUNK: vmapped}
    chooser = ModeChooser(clock=clock)
    modes = [chooser.run(clock.process, [0], [], units=10)[0] for _ in range(7)]
    assert modes[:4] == [None, AUTO_CHUNK, None, AUTO_CHUNK]  # one at a time first
    assert chooser.decided and chooser.choice == winner
    assert modes[4:] == [winner] * 3


def test_chooser_compares_time_per_sample_epoch_and_best_of_trials():
    clock = FakeClock()
    chooser = ModeChooser(clock=clock)
    runs = [(None, 1.0, 10), (AUTO_CHUNK, 5.0, 100), (None, 0.8, 10), (AUTO_CHUNK, 3.0, 10)]
    for mode, seconds, units in runs:
        assert chooser.next_mode() == mode
        clock.durations = {mode: seconds}
        chooser.run(clock.process, [0], [], units=units)
    # serial: best 0.08 s per unit; vmapped: best 0.05 (the slow warm-up round does not count)
    assert chooser.choice == AUTO_CHUNK


def test_auto_is_the_default_and_trains_like_one_at_a_time():
    model = _model()
    flat = read_params(model)
    auto = SubsetSerialTrainer(model, _data(), _slices(), args=ARGS, seed=3)
    serial = SubsetSerialTrainer(_model(), _data(), _slices(), args=ARGS, seed=3, batch_clients=None)
    assert auto.batch_clients == AUTO
    for _ in range(5):  # both modes tried twice, then the choice
        got = [r.clone() for r in auto.local_process([0, 1, 2], [flat])]
        want = serial.local_process([0, 1, 2], [flat])
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)
    assert auto._mode.decided and auto._mode.choice in (None, AUTO_CHUNK)


class _Plain(Dataset):
    """A data set that is not a TensorDataset: vmapped training cannot use it."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        return self.base[i]


def test_auto_trains_one_at_a_time_without_a_warning_when_vmap_cannot_run(caplog):
    trainer = SubsetSerialTrainer(_model(), _Plain(_data()), _slices(), args=ARGS, seed=3)
    with caplog.at_level(logging.WARNING, logger="fastfl.client"):
        trainer.local_process([0, 1], [read_params(_model())])
    assert trainer._mode.decided and trainer._mode.choice is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("forced", [None, 2])
def test_none_and_int_still_force_a_mode(forced):
    trainer = SubsetSerialTrainer(_model(), _data(), _slices(), args=ARGS, seed=3, batch_clients=forced)
    assert trainer.batch_clients == forced and trainer._mode is None
    trainer.local_process([0, 1], [read_params(_model())])
    assert (trainer._vectorized is not None) == (forced is not None)


def test_unknown_mode_name_is_a_type_error():
    with pytest.raises(TypeError, match="batch_clients"):
        SubsetSerialTrainer(_model(), _data(), _slices(), batch_clients="fast")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("batch_clients", [2, "auto"])
def test_vmapped_and_auto_training_on_cuda_match_one_at_a_time(batch_clients):
    flat = read_params(_model())
    serial = SubsetSerialTrainer(
        _model(), _data(), _slices(), args=ARGS, seed=3, batch_clients=None, cuda=True
    )
    other = SubsetSerialTrainer(
        _model(), _data(), _slices(), args=ARGS, seed=3, batch_clients=batch_clients, cuda=True
    )
    for _ in range(5):
        want = [r.clone() for r in serial.local_process([0, 1, 2], [flat])]
        got = other.local_process([0, 1, 2], [flat])
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g.cpu(), w.cpu(), rtol=1e-4, atol=1e-5)

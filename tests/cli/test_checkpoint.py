from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from fastfl.cli import checkpoint as ckpt
from fastfl.errors import CheckpointError


class _Handler:
    def __init__(self):
        self.model = nn.Linear(3, 2)
        self.round = 4
        self._rng = random.Random(1)
        self.gen = torch.Generator().manual_seed(2)
        self.np_gen = np.random.default_rng(3)


class _Trainer:
    def __init__(self):
        self._uses = {0: 2, 5: 1}


def _draws(h: _Handler) -> tuple:
    return (
        h._rng.random(),
        torch.rand(2, generator=h.gen).tolist(),
        h.np_gen.random(),
        random.random(),
        np.random.random(),
        torch.rand(1).item(),
    )


def test_every_generator_is_restored(tmp_path):
    h, t = _Handler(), _Trainer()
    ckpt.save_checkpoint(tmp_path, ckpt.snapshot(h, t, [{"round": 4}], "digest"))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left behind
    expected = _draws(h)
    t._uses[0] = 9
    fresh_h, fresh_t = _Handler(), _Trainer()
    fresh_h.round, fresh_t._uses = 0, {}
    with torch.no_grad():
        fresh_h.model.weight.zero_()
    rows = ckpt.restore_state(fresh_h, fresh_t, ckpt.load_checkpoint(tmp_path, "digest"))
    assert rows == [{"round": 4}] and fresh_h.round == 4 and fresh_t._uses == {0: 2, 5: 1}
    assert torch.equal(fresh_h.model.weight, h.model.weight)
    assert _draws(fresh_h) == expected


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    h, t = _Handler(), _Trainer()
    ckpt.save_checkpoint(tmp_path, ckpt.snapshot(h, t, [], "digest"))
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, ckpt.snapshot(h, t, [{"round": 5}], "digest"))
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_foreign_and_mismatched_files(tmp_path):
    torch.save({"format": "something else"}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not a fastfl run checkpoint"):
        ckpt.load_checkpoint(tmp_path, "digest")
    ckpt.save_checkpoint(tmp_path, ckpt.snapshot(_Handler(), _Trainer(), [], "digest"))
    with pytest.raises(CheckpointError, match="different experiment"):
        ckpt.load_checkpoint(tmp_path, "other")
    state = ckpt.load_checkpoint(tmp_path, "digest")
    other = _Handler()
    other.model = nn.Linear(4, 2)
    with pytest.raises(CheckpointError, match="does not match this run's model"):
        ckpt.restore_state(other, _Trainer(), state)

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

SMALL = """
[run]
rounds = 3
seed = 1
tensorboard = false

[data]
name = "digits"

[partition]
clients = 20

[model]
hidden = [16]

[train]
clients_per_round = 4
epochs = 1
batch_size = 16
lr = 0.1
"""


@pytest.fixture(autouse=True)
def _restore_globals():
    """fastfl run seeds the global generators and sets torch's thread count: undo it after each test."""
    threads = torch.get_num_threads()
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    torch.set_num_threads(threads)
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def load_model(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.pt", weights_only=True)


def assert_same_model(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key

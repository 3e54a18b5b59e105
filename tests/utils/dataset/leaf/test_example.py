from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from fastfl.utils.dataset.leaf import cache_path, synthetic_tree

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "leaf_fedavg.py"


def _example():
    spec = importlib.util.spec_from_file_location("leaf_fedavg_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["femnist", "synthetic"])
def test_example_runs_one_round_on_a_generated_tree(tmp_path, name, capsys):
    synthetic_tree(tmp_path, name, num_users=4, train_samples=(3, 6), test_samples=2, seed=1)
    argv = [
        "--name",
        name,
        "--root",
        str(tmp_path),
        "--rounds",
        "1",
        "--clients-per-round",
        "2",
        "--epochs",
        "1",
    ]
    history = _example().main(argv)
    assert len(history) == 1 and math.isfinite(history[0]["loss"]) and 0 <= history[0]["accuracy"] <= 1
    assert cache_path(tmp_path, name, "train").is_file()
    assert "round   1: clients" in capsys.readouterr().out


def test_example_default_data_is_generated(capsys):
    history = _example().main(["--rounds", "1", "--users", "3", "--clients-per-round", "2", "--epochs", "1"])
    assert len(history) == 1
    assert "femnist: 3 clients" in capsys.readouterr().out

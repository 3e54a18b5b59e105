"""The papers' behaviour on generated data (slow): FedProx with stragglers, q-FFL fairness.

Run with ``pytest -m slow tests/contrib/algorithm/test_paper_behaviour.py`` (about 2 CPU-minutes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_fedprox_with_90_percent_stragglers_is_more_stable_than_fedavg() -> None:
    import fedprox_stragglers

    fedavg, prox0, prox1 = fedprox_stragglers.main(["--rounds", "40"])
    # FedAvg drops the 9 stragglers of each 10: its loss jumps from round to round; FedProx keeps their
    # partial work, and mu = 1 is the most stable (Li et al. 2020, Fig. 1, Synthetic(1,1), 90% stragglers).
    assert prox1["loss_jumps"] < prox0["loss_jumps"] < fedavg["loss_jumps"]
    assert prox1["train_loss"] < fedavg["train_loss"]
    assert prox1["test_accuracy"] > fedavg["test_accuracy"]


def test_qffl_lowers_the_variance_of_per_device_accuracy() -> None:
    import qffl_fairness

    plain, fair = qffl_fairness.main(["--rounds", "2000", "--q", "1"])
    assert fair["variance_x1e4"] < 0.9 * plain["variance_x1e4"]
    assert fair["worst_10pct"] >= plain["worst_10pct"]

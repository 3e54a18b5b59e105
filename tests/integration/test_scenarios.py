"""Each example scenario, run as real processes for 2-3 rounds on digits, reaches a stated accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.integration._procs import ROOT, env

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(280)]


def _run(script: str, tmp_path: Path, *args: str) -> tuple[list[dict], Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out, save = tmp_path / "metrics", tmp_path / "model.pt"
    cmd = [sys.executable, str(ROOT / "examples" / script), "--out", str(out), "--save", str(save), *args]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=250, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.with_suffix(".json").read_text())["rounds"]
    return rows, save


def test_cross_process_sync_two_clients(tmp_path):
    rows, _ = _run("cross_process.py", tmp_path, "--rounds", "2", "--epochs", "2")
    assert [r["round"] for r in rows] == [1, 2]
    assert all(r["clients"] == 2 for r in rows)
    assert rows[-1]["accuracy"] >= 0.85


def test_serial_cross_process_equals_standalone(tmp_path):
    rows, cross = _run("cross_process_serial.py", tmp_path / "c", "--rounds", "3")
    assert all(r["clients"] == 10 for r in rows)
    assert rows[-1]["accuracy"] >= 0.6
    alone, single = _run(
        "standalone_fedavg.py", tmp_path / "s", "--rounds", "3", "--clients", "30", "--sample-ratio", "0.34"
    )
    torch.testing.assert_close(torch.load(cross), torch.load(single), rtol=1e-5, atol=1e-6)
    assert [r["accuracy"] for r in rows] == pytest.approx([r["accuracy"] for r in alone], abs=1e-3)


def test_asynchronous_two_active_clients(tmp_path):
    rows, _ = _run("asynchronous.py", tmp_path, "--rounds", "3", "--epochs", "1")
    assert [r["round"] for r in rows] == [1, 2, 3]
    assert rows[-1]["accuracy"] >= 0.7


def test_hierarchical_two_schedulers_weighted_by_sample_counts(tmp_path):
    # Weighted FedAvg needs each upload's sample count: the connectors must pass it on.
    rows, _ = _run("hierarchical.py", tmp_path, "--rounds", "2", "--weighted")
    assert all(r["clients"] == 22 for r in rows)
    assert rows[-1]["accuracy"] >= 0.6


def test_hierarchical_compressed_uplinks_keep_their_delta_mark(tmp_path):
    # QSGD-coded deltas cross a scheduler: it decodes them and must pass their delta mark up, or
    # the top server averages deltas as if they were models (accuracy fell to 10-20 % that way).
    rows, _ = _run("hierarchical.py", tmp_path, "--rounds", "2", "--qsgd", "127")
    assert all(r["clients"] == 22 for r in rows)
    assert rows[-1]["accuracy"] >= 0.6

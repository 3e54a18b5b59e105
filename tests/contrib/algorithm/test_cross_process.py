"""Algorithms across real processes through the stock managers (gloo on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.contrib.algorithm._quadratic import make_clients, run
from tests.integration._procs import ROOT, env, finish, free_port

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(200)]


def _start(role: str, args: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.contrib.algorithm._workers", role, json.dumps(args)]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.parametrize("name", ["scaffold"])
def test_two_client_processes_equal_the_standalone_run(name: str, tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "params.json"
    base = {"port": port, "world": 3, "algorithm": name}
    procs = [_start("server", {**base, "rank": 0, "rounds": 3, "out": str(out)})]
    procs += [_start("client", {**base, "rank": r}) for r in (1, 2)]
    for code, output in finish(procs, timeout=150):
        assert code == 0, output
    cross = torch.tensor(json.loads(out.read_text()), dtype=torch.float64)
    data, slices, _ = make_clients()
    alone, _, _ = run(name, data, slices, rounds=3, epochs=3)
    torch.testing.assert_close(cross, alone, rtol=1e-5, atol=1e-6)


def test_fedbuff_runs_under_the_asynchronous_manager(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "state.json"
    base = {"port": port, "world": 3}
    procs = [_start("async_server", {**base, "rank": 0, "total_time": 4, "out": str(out)})]
    procs += [_start("async_client", {**base, "rank": r}) for r in (1, 2)]
    for code, output in finish(procs, timeout=150):
        assert code == 0, output
    state = json.loads(out.read_text())
    assert state["time"] == 4  # three server steps of K = 2 buffered updates each
    params = torch.tensor(state["params"])
    assert torch.isfinite(params).all() and params.abs().sum() > 0

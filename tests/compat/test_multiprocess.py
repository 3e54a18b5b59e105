"""FedLab-1.2.1-style server and client code in real processes over gloo, on fedlab and on fastfl."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.integration._procs import ROOT, env, finish, free_port

pytest.importorskip("fedlab.core.server.manager")
pytestmark = [pytest.mark.distributed, pytest.mark.timeout(300)]
WORLD, ROUNDS = 3, 2


def _start(role: str, args: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.compat._mp_worker", role, json.dumps(args)]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _launch(lib: str, variant: str, tmp_path: Path) -> tuple[list[subprocess.Popen], list[Path]]:
    port = free_port()
    outs = [tmp_path / f"{lib}-{variant}-{rank}.json" for rank in range(WORLD)]
    base = {"lib": lib, "port": port, "world": WORLD, "rounds": ROUNDS, "variant": variant}
    procs = [_start("server", {**base, "rank": 0, "out": str(outs[0])})]
    procs += [_start("client", {**base, "rank": r, "out": str(outs[r])}) for r in range(1, WORLD)]
    return procs, outs


def test_tutorial_handler_fedprox_clients_and_custom_managers_match_fedlab(tmp_path):
    """Both server variants (stock main loop, custom main loop) on both packages, all four runs at once."""
    keys = [(lib, variant) for variant in ("stock_loop", "custom_loop") for lib in ("fedlab", "fastfl")]
    runs = {key: _launch(*key, tmp_path) for key in keys}  # 12 processes at once: startup dominates
    results = {key: finish(procs, timeout=240) for key, (procs, _) in runs.items()}
    for key, res in results.items():
        assert [code for code, _ in res] == [0] * WORLD, (key, res)
    got = {key: [json.loads(p.read_text()) for p in outs] for key, (_, outs) in runs.items()}
    for variant in ("stock_loop", "custom_loop"):
        fedlab, fastfl = got["fedlab", variant], got["fastfl", variant]
        assert fastfl[0]["round"] == fedlab[0]["round"] == ROUNDS
        torch.testing.assert_close(
            torch.tensor(fastfl[0]["params"]), torch.tensor(fedlab[0]["params"]), rtol=1e-5, atol=1e-6
        )
        # the overridden hooks run as often as under FedLab: activate_clients and sample_clients
        # once per round, downlink_package once per rank per round and once per rank at Exit
        assert fastfl[0]["calls"] == fedlab[0]["calls"]
        want = {"activate": ROUNDS, "sample": ROUNDS, "update": 2 * ROUNDS, "downlink": 2 * ROUNDS + 2}
        assert fastfl[0]["calls"] == want, variant
        for rank in range(1, WORLD):
            assert fastfl[rank]["calls"] == fedlab[rank]["calls"] == {"train": ROUNDS}


def test_a_crash_in_user_code_is_the_first_error_the_client_logs(tmp_path):
    port, out = free_port(), tmp_path / "server.json"
    base = {"port": port, "world": 2}
    procs = [_start("scripted_server", {**base, "rank": 0, "out": str(out)})]
    procs.append(_start("crashing_client", {**base, "rank": 1}))
    (server_code, server_log), (client_code, client_log) = finish(procs, timeout=120)
    assert client_code != 0 and server_code == 0, (server_log, client_log)
    errors = [line for line in client_log.splitlines() if "Error" in line]
    assert "ValueError: user bug in train()" in errors[0], client_log
    assert json.loads(out.read_text())["outcome"] != "MessageCode.ParameterUpdate"

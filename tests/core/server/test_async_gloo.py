"""The asynchronous server over real processes: a client that dies after its request does not stop the run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration._procs import ROOT, env, finish, free_port

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(200)]


def _start(role: str, args: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.core.server._gloo_workers", role, json.dumps(args)]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_async_server_carries_on_when_a_client_dies_after_its_request(tmp_path):
    base, out = {"port": free_port(), "world": 3}, tmp_path / "server.json"
    procs = [
        _start("async_server", {**base, "rank": 0, "out": str(out), "total_time": 6}),
        _start("active_client", {**base, "rank": 1}),
        _start("dying_client", {**base, "rank": 2}),
    ]
    (server_code, server_log), (client_code, client_log), (dead_code, _) = finish(procs, timeout=150)
    assert (server_code, client_code, dead_code) == (0, 0, 3), server_log + client_log
    result = json.loads(out.read_text())
    assert result == {"time": 6, "gone": [2]}
    assert "client rank 2" in server_log

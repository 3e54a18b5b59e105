from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration._procs import finish, free_port, start

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(240)]


def _run(tmp_path, on_missing):
    port, out = free_port(), str(tmp_path / "server.json")
    base = {"port": port, "world": 4, "timeout": 60}
    server = {
        **base,
        "rank": 0,
        "out": out,
        "rounds": 3,
        "ratio": 1.0,
        "round_timeout": 8,
        "on_missing": on_missing,
    }
    procs = [
        start("sync_server", server),
        start("passive", {**base, "rank": 1, "kind": "sgd", "die_at": 2}),
        start("passive", {**base, "rank": 2, "kind": "sgd"}),
        start("passive", {**base, "rank": 3, "kind": "sgd"}),
    ]
    results = finish(procs, timeout=180)
    assert all(p.poll() is not None for p in procs), "a process was left running"
    assert results[1][0] == -9, "the client was meant to be killed mid-round"
    return results, out


def test_killed_client_round_finishes_with_the_others(tmp_path):
    results, out = _run(tmp_path, "finish")
    codes = [code for code, _ in results]
    assert codes[0] == 0 and codes[2:] == [0, 0], results
    server_log = results[0][1]
    assert "lost rank 1: its connection closed" in server_log
    state = json.loads(Path(out).read_text())
    assert state["round"] == 3
    assert state["dead"] == [1]


@pytest.mark.slow
def test_killed_client_stops_the_run_with_a_clear_error(tmp_path):
    results, _ = _run(tmp_path, "error")
    assert results[0][0] != 0
    assert "CommunicationError: client rank 1 is gone" in results[0][1]
    assert [code for code, _ in results[2:]] == [0, 0], results

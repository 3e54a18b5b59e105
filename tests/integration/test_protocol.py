from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration._procs import finish, free_port, start

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(240)]


def test_passive_clients_handshake_updates_exit_and_feedback(tmp_path):
    port, out = free_port(), str(tmp_path / "server.json")
    base = {"port": port, "world": 3}
    procs = [
        start("raw_server_passive", {**base, "rank": 0, "out": out}),
        start("passive", {**base, "rank": 1, "kind": "serial"}),
        start("passive", {**base, "rank": 2, "kind": "sgd"}),
    ]
    results = finish(procs)
    assert [code for code, _ in results] == [0, 0, 0], results
    log = json.loads(Path(out).read_text())
    # handshake: SetUp with int32 [client count], received per rank in order
    assert log["setup"] == [[1, "SetUp", "torch.int32", [3]], [2, "SetUp", "torch.int32", [1]]]
    # the serial rank trained local clients 0 and 2: two models then their sample counts
    assert log["updates"]["1"] == ["ParameterUpdate", [8, 8, 2], [10.0, 10.0]]
    assert log["updates"]["2"] == ["ParameterUpdate", [8, 1], [40.0]]
    # only the last rank answers Exit, with an empty Exit
    assert log["feedback"] == [2, "Exit", None]


def test_active_client_request_update_cycle(tmp_path):
    port, out = free_port(), str(tmp_path / "server.json")
    base = {"port": port, "world": 2}
    procs = [
        start("raw_server_active", {**base, "rank": 0, "out": out}),
        start("active", {**base, "rank": 1}),
    ]
    results = finish(procs)
    assert [code for code, _ in results] == [0, 0], results
    log = json.loads(Path(out).read_text())
    assert log["setup"] == ["SetUp", [1]]
    assert log["cycle"] == [
        ["ParameterRequest", None],
        ["ParameterUpdate", [8, 1], [1.0]],
        ["ParameterRequest", None],
        ["ParameterUpdate", [8, 1], [5.0]],
        ["ParameterRequest", None],
    ]
    assert log["feedback"] == "Exit"


def test_sync_server_downlink_exit_and_weighted_average(tmp_path):
    port = free_port()
    base = {"port": port, "world": 3}
    outs = [str(tmp_path / f"r{r}.json") for r in range(3)]
    procs = [
        start(
            "sync_server", {**base, "rank": 0, "out": outs[0], "rounds": 2, "ratio": 1.0, "weighted": True}
        ),
        start("raw_client", {**base, "rank": 1, "count": 2, "out": outs[1]}),
        start("raw_client", {**base, "rank": 2, "count": 3, "out": outs[2]}),
    ]
    results = finish(procs)
    assert [code for code, _ in results] == [0, 0, 0], results
    server = json.loads(Path(outs[0]).read_text())
    assert server["round"] == 2
    # rank 1 uploads 2 models of 1.0, rank 2 three of 2.0, each with count 10: mean 1.6
    assert server["params"] == pytest.approx([1.6] * 8)
    r1, r2 = json.loads(Path(outs[1]).read_text()), json.loads(Path(outs[2]).read_text())
    # ids travel first, as floats of the model dtype; then the parameters; Exit carries all ids
    assert r1 == [["ParameterUpdate", "torch.float32", [0.0, 1.0], 8]] * 2 + [
        ["Exit", "torch.float32", [0.0, 1.0], 8]
    ]
    assert r2[-1] == ["Exit", "torch.float32", [0.0, 1.0, 2.0], 8]
    assert len(r2) == 3

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from fastfl.core.network import DistNetwork
from tests.integration._procs import finish, free_port, start

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(240)]
CARRIES_META = "meta" in inspect.signature(DistNetwork.send).parameters and hasattr(
    DistNetwork, "recv_message"
)


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
    # the serial rank trained local clients 0 and 2: FedLab's upload of two models, nothing else
    assert log["updates"]["1"][:2] == ["ParameterUpdate", [8, 8]]
    assert log["updates"]["2"][:2] == ["ParameterUpdate", [8]]
    if CARRIES_META:  # the sample counts travel as package metadata (contract C4)
        assert log["updates"]["1"][2] == {"num_samples": 20, "num_clients": 2, "n0": 10, "n1": 10}
        assert log["updates"]["2"][2] == {"num_samples": 40}
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


def _sync_run(tmp_path, weighted):
    port = free_port()
    base = {"port": port, "world": 3}
    outs = [str(tmp_path / f"r{r}.json") for r in range(3)]
    procs = [
        start(
            "sync_server",
            {**base, "rank": 0, "out": outs[0], "rounds": 2, "ratio": 1.0, "weighted": weighted},
        ),
        start("raw_client", {**base, "rank": 1, "count": 2, "out": outs[1], "samples": 10, "meta": weighted}),
        start("raw_client", {**base, "rank": 2, "count": 3, "out": outs[2], "samples": 30, "meta": weighted}),
    ]
    results = finish(procs)
    assert [code for code, _ in results] == [0, 0, 0], results
    return [json.loads(Path(o).read_text()) for o in outs]


def test_sync_server_downlink_exit_and_fedlab_uniform_average(tmp_path):
    server, r1, r2 = _sync_run(tmp_path, weighted=False)
    assert server["round"] == 2
    # rank 1 uploads 2 models of 1.0, rank 2 three of 2.0: FedLab's uniform mean 1.6
    assert server["params"] == pytest.approx([1.6] * 8)
    # ids travel first (FedLab's sampled order), as floats of the model dtype; then the parameters;
    # Exit carries all ids
    r1 = [[c, d, sorted(ids), n] for c, d, ids, n in r1]
    assert r1 == [["ParameterUpdate", "torch.float32", [0.0, 1.0], 8]] * 2 + [
        ["Exit", "torch.float32", [0.0, 1.0], 8]
    ]
    assert r2[-1] == ["Exit", "torch.float32", [0.0, 1.0, 2.0], 8]
    assert len(r2) == 3


@pytest.mark.skipif(
    not CARRIES_META, reason="DistNetwork does not carry package metadata yet (contracts C1/C2)"
)
def test_sync_server_weights_by_sample_counts_from_metadata(tmp_path):
    server, _, _ = _sync_run(tmp_path, weighted=True)
    # 2 models of 1.0 with 10 samples each, 3 of 2.0 with 30 each
    assert server["params"] == pytest.approx([(2 * 10 * 1.0 + 3 * 30 * 2.0) / 110] * 8)

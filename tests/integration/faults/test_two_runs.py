"""Two runs started by hand on one port: the second never mixes into the first, and says why."""

from __future__ import annotations

import time

import pytest

from tests.integration.faults import scenarios as sc
from tests.integration.faults._harness import orphans, wait_all, worker

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]


def test_a_second_run_on_the_same_port_fails_clearly_and_the_first_completes(tmp_path):
    run_a = sc.flat("sgd", 2)
    port = run_a[0].args["port"]
    for p in run_a[1:]:
        p.args["pause"] = 0.5  # run A is still going when run B arrives
    run_b = sc.flat("sgd", 2)
    for p in run_b:
        p.args["port"] = port
    started = []
    for run, rid in ((run_a, "run-A"), (run_b, "run-B")):
        for p in run:
            args = {"timeout": sc.NETWORK_TIMEOUT, **p.args, "env": {"FASTFL_RUN_ID": rid}}
            started.append(worker(p.role, args, tmp_path / f"{rid}-{p.name}.log"))
        time.sleep(1.0)
    results = wait_all(started, sc.DEADLINE)
    assert not orphans(started)
    (a_server, a1, a2), (b_server, b1, b2) = results[:3], results[3:]
    assert [c for c, _ in (a_server, a1, a2)] == [0, 0, 0], a_server[1]
    assert '"rounds": [[1, 2], [2, 2], [3, 2], [4, 2]]' in a_server[1], (
        "run A aggregated only its own clients"
    )
    assert b_server[0] not in (0, None) and "could not host the rendezvous" in b_server[1]
    for code, out in (b1, b2):
        assert code not in (0, None), out
        assert "RunMismatchError" in out and "hosts run 'run-A'" in out and "belongs to run 'run-B'" in out

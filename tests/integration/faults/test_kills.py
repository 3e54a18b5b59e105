"""Kill a process at seeded random points of sync, serial, async and hierarchical runs.

Each case asserts: every surviving process exits by itself before the deadline (far below the
network timeout, so the death was detected as an event), the log names the lost rank, the
completed rounds are complete (each aggregated exactly the updates that arrived), and no process
is left behind. The default set has 3 kill points per mode; the `slow` set 10 more.
"""

from __future__ import annotations

import pytest

from tests.integration.faults import scenarios as sc

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]

DEFAULT_SEEDS = [0, 1, 2]
SLOW_SEEDS = list(range(100, 110))


def _seeds():
    return [*DEFAULT_SEEDS, *(pytest.param(s, marks=pytest.mark.slow) for s in SLOW_SEEDS)]


def _check_flat(tmp_path, kind: str, clients: int, per_rank: int, seed: int) -> None:
    victim, die = sc.kill_point(seed, list(range(1, clients + 1)))
    out = sc.run(sc.flat(kind, clients, victim, die), tmp_path)
    out.check_survivors_ended()
    assert f"lost rank {victim}" in out.output("server")
    result = out.result("server")
    assert result["rounds"] == sc.expected_counts(per_rank, clients, die), (victim, die)
    assert result["dead"] == [victim]
    for r in range(1, clients + 1):
        if r != victim:
            assert out.codes[r] == 0, out.output(f"client{r}")


@pytest.mark.parametrize("seed", _seeds())
def test_kill_a_client_of_a_synchronous_run(tmp_path, seed):
    _check_flat(tmp_path, "sgd", 3, 1, seed)


@pytest.mark.parametrize("seed", _seeds())
def test_kill_a_serial_client(tmp_path, seed):
    _check_flat(tmp_path, "serial", 2, sc.SERIAL, seed)


def test_kill_the_server(tmp_path):
    procs = sc.flat("sgd", 2)
    procs[0].args["die"] = {"round": 2}
    procs[0].killed = True
    out = sc.run(procs, tmp_path)
    out.check_survivors_ended()
    for name in ("client1", "client2"):
        assert out.codes[procs.index(next(p for p in procs if p.name == name))] != 0
        assert "rank 0" in out.output(name) and "closed" in out.output(name)


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.slow) for s in [1, 2, *SLOW_SEEDS])])
def test_kill_a_scheduler(tmp_path, seed):
    group, die = sc.kill_point(seed, [1, 2], rounds=sc.ROUNDS - 1)
    procs = sc.hierarchical(tmp_path, victim=(group, 0), die=die)
    out = sc.run(procs, tmp_path)
    out.check_survivors_ended()
    top = out.output("top")
    assert f"lost rank {group}" in top
    result = out.result("top")
    k = die["call"]
    counts = [c for _, c in result["rounds"]]
    assert [r for r, _ in result["rounds"]] == list(range(1, sc.ROUNDS + 1))
    assert counts[:k] == [4] * k and counts[k + 1 :] == [2] * (sc.ROUNDS - k - 1)
    assert counts[k] in (2, 4), "the round after the kill counts the group wholly or not at all"
    assert result["dead"] == [group]
    other = 3 - group
    assert out.codes[[p.name for p in procs].index(f"scheduler{other}")] == 0
    for r in (1, 2):
        assert out.codes[[p.name for p in procs].index(f"g{other}client{r}")] == 0
        orphaned = out.output(f"g{group}client{r}")
        assert "rank 0" in orphaned and "closed" in orphaned


ASYNC_UPDATES = 8


@pytest.mark.parametrize("seed", _seeds())
def test_kill_a_client_of_an_asynchronous_run(tmp_path, seed):
    victim, die = sc.kill_point(seed, [1, 2], rounds=3, phases=("before", "after", "request"))
    out = sc.run(sc.asynchronous(2, ASYNC_UPDATES, victim, die), tmp_path)
    out.check_survivors_ended()
    assert f"rank {victim}" in out.output("server")
    assert out.result("server")["time"] == ASYNC_UPDATES + 1, (
        "the survivor's updates carry the run to its end"
    )
    assert out.codes[3 - victim] == 0, out.output(f"client{3 - victim}")


LOWER_ROUND_TIMEOUT = 3.0


@pytest.mark.parametrize("seed", _seeds())
def test_kill_a_lower_client_of_a_hierarchical_run(tmp_path, seed):
    """The scheduler names its lost client at once; for the top server the group's missing update
    is a silent one, which the round deadline catches (set short here, to keep the test short)."""
    (group, rank), die = sc.kill_point(seed, [(1, 1), (1, 2), (2, 1), (2, 2)], rounds=sc.ROUNDS - 1)
    manager = {"round_timeout": LOWER_ROUND_TIMEOUT}
    procs = sc.hierarchical(tmp_path, victim=(group, rank), die=die, manager=manager)
    out = sc.run(procs, tmp_path)
    out.check_survivors_ended()
    assert f"lost lower rank {rank}" in out.output(f"scheduler{group}")
    assert f"rank(s) [{group}]" in out.output("top")
    k = die["call"]
    expected = [[r, 4 if r < k else 3 if r == k else 2] for r in range(1, sc.ROUNDS + 1)]
    assert out.result("top")["rounds"] == expected, "the group sits out once it missed a deadline"
    survivors = [p for p in procs if not p.killed]
    assert all(out.codes[procs.index(p)] == 0 for p in survivors), out.codes


@pytest.mark.slow
def test_kill_a_client_with_on_missing_error_stops_the_run_clearly(tmp_path):
    procs = sc.flat("sgd", 2, victim=1, die={"call": 2, "phase": "before"})
    procs[0].args["manager"] = {"on_missing": "error"}
    out = sc.run(procs, tmp_path)
    out.check_survivors_ended()
    assert out.codes[0] not in (0, None) and "rank 1" in out.output("server")
    assert "RESULT" not in out.output("server")

"""Rendezvous: every wait ends within its timeout, and a process never joins another run."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fastfl.core.network import DistNetwork
from fastfl.errors import CommunicationError, CommunicationTimeout, RunMismatchError
from tests.core.communicator.ranks import run_ranks

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]


def _join(
    rank: int, world: int, port: int, timeout: float = 20.0, run_id: str | None = None, hold: float = 0
):
    net = DistNetwork(("127.0.0.1", port), world, rank, timeout=timeout, run_id=run_id)
    started = time.monotonic()
    try:
        net.init_network_connection()
    except CommunicationError as err:
        return type(err).__name__, str(err), time.monotonic() - started
    time.sleep(hold)
    net.close_network_connection()
    return "joined", "", time.monotonic() - started


class _ForeignListener:
    """A program that is not fastfl: accepts connections on the port and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def _client_of_foreign(rank: int, world: int, port: int):
    return _join(1, 2, port, timeout=2.0)


def test_a_foreign_listener_does_not_hold_a_client_past_its_timeout():
    foreign = _ForeignListener()
    try:
        kind, text, took = run_ranks(_client_of_foreign, 1, foreign.port, timeout=60)[0]
    finally:
        foreign.close()
    assert kind == CommunicationTimeout.__name__, text
    assert "no fastfl rendezvous answered" in text and f":{foreign.port}" in text
    assert took < 30, "the rendezvous must end within its timeout, not hang"


def _server_on_taken_port(rank: int, world: int, port: int):
    return _join(0, 2, port, timeout=2.0)


def test_rank_0_on_a_taken_port_says_so():
    foreign = _ForeignListener()
    try:
        kind, text, _ = run_ranks(_server_on_taken_port, 1, foreign.port, timeout=60)[0]
    finally:
        foreign.close()
    assert kind == CommunicationError.__name__ and "could not host the rendezvous" in text


def _two_ids(rank: int, world: int, port: int):
    return _join(rank, world, port, timeout=2.0, run_id="run-A" if rank == 0 else "run-B")


def test_a_process_of_another_run_is_refused(free_port):
    results = run_ranks(_two_ids, 2, free_port, timeout=60)
    kind, text, _ = results[1]
    assert kind == RunMismatchError.__name__
    assert "hosts run 'run-A'" in text and "belongs to run 'run-B'" in text
    assert results[0][0] == CommunicationTimeout.__name__  # rank 0 waited for a rank 1 that never came


def _world_mismatch(rank: int, world: int, port: int):
    return _join(rank, 2 if rank == 0 else 3, port, timeout=2.0)


def test_a_world_size_mismatch_is_named(free_port):
    kind, text, _ = run_ranks(_world_mismatch, 2, free_port, timeout=60)[1]
    assert kind == RunMismatchError.__name__ and "world_size=2" in text and "world_size=3" in text


def _same_rank_twice(rank: int, world: int, port: int):
    if rank == 2:
        time.sleep(1.0)  # comes after the first rank 1, while the run is still up
        return _join(1, 2, port, timeout=2.0)
    return _join(rank, 2, port, timeout=2.0, hold=3.0)


def test_a_rank_claimed_twice_is_refused(free_port):
    results = run_ranks(_same_rank_twice, 3, free_port, timeout=60)
    assert results[0][0] == results[1][0] == "joined", results
    kind, text = results[2][:2]
    assert kind == RunMismatchError.__name__ and "rank 1 has already joined" in text


def test_run_id_is_checked_and_read_from_the_environment(monkeypatch):
    from fastfl.core.network import NetworkConfigError

    with pytest.raises(NetworkConfigError, match="run_id must be"):
        DistNetwork(("127.0.0.1", 1), 2, 0, run_id="a|b")
    monkeypatch.setenv("FASTFL_RUN_ID", "from-env")
    assert DistNetwork(("127.0.0.1", 1), 2, 0).run_id == "from-env"
    assert DistNetwork(("127.0.0.1", 1), 2, 0, run_id="mine").run_id == "mine"

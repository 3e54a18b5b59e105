"""Server managers against a scripted network: lost ranks, deadlines, async carry-on, crash logging."""

from __future__ import annotations

import logging
import queue
import threading
from typing import ClassVar

import pytest
import torch
from torch import nn

from fastfl.core.coordinator import Coordinator
from fastfl.core.network_manager import NetworkManager
from fastfl.core.server import (
    AsynchronousServerManager,
    AsyncParameterServerHandler,
    SynchronousServerManager,
    SyncParameterServerHandler,
)
from fastfl.core.server import manager as manager_module
from fastfl.core.server._rounds import RoundClock
from fastfl.errors import CommunicationError, CommunicationTimeout, PeerLostError
from fastfl.utils.message_code import MessageCode

D = 8  # parameters of nn.Linear(3, 2)


class Net:
    """A network that records sends; `dead` ranks fail to send; answers come from `script`."""

    def __init__(self, world, dead=(), timeout=30.0):
        self.world_size, self.rank, self.timeout = world, 0, timeout
        self.dead, self.sent, self.inbox = set(dead), [], queue.Queue()

    def send(self, content=None, message_code=None, dst=0):
        if dst in self.dead:
            raise CommunicationError(f"sending to rank {dst} failed")
        self.sent.append((dst, message_code, content))

    def recv(self, src=None):
        item = self.inbox.get(timeout=5)
        if isinstance(item, BaseException):
            raise item
        return item

    def close_network_connection(self):
        pass


class ScriptedReceiver:
    """The Receiver of contract C3: `get` answers from a script (message, None = deadline, or an error)."""

    script: ClassVar[list] = []

    def __init__(self, network):
        self.alive = False

    def get(self, timeout):
        item = ScriptedReceiver.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def _update(rank, value=1.0):
    return (rank, MessageCode.ParameterUpdate, [torch.full((D,), value)])


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setattr(manager_module, "Receiver", ScriptedReceiver)
    return PeerLostError


def _sync_manager(net, rounds=2, **kw):
    handler = SyncParameterServerHandler(nn.Linear(3, 2), rounds, 1.0, seed=0)
    manager = SynchronousServerManager(net, handler, **kw)
    manager.coordinator = Coordinator({1: 1, 2: 1, 3: 1})
    handler.client_num_in_total = 3
    return manager, handler


def test_a_lost_rank_ends_the_round_with_the_others_and_sits_out(scripted, caplog):
    net = Net(4)
    manager, handler = _sync_manager(net)
    ScriptedReceiver.script = [
        _update(1, 1.0),
        scripted(2),
        _update(3, 3.0),
        _update(1, 5.0),
        _update(3, 7.0),
    ]
    with caplog.at_level(logging.ERROR, logger="fastfl.server"):
        manager.main_loop()
    assert handler.round == 2 and manager.dead == {2}
    assert torch.allclose(handler.model_parameters, torch.full((D,), 6.0))
    assert "client rank 2 is gone" in caplog.text
    round2 = [dst for dst, code, _ in net.sent[3:] if code == MessageCode.ParameterUpdate]
    assert sorted(round2) == [1, 3]  # its clients are no longer sampled
    ScriptedReceiver.script = [(3, MessageCode.Exit, None)]
    manager.shutdown_clients()
    assert sorted(dst for dst, code, _ in net.sent if code == MessageCode.Exit) == [1, 3]


def test_on_missing_error_stops_the_run_naming_the_rank(scripted):
    manager, _ = _sync_manager(Net(4), on_missing="error")
    ScriptedReceiver.script = [_update(1), scripted(2)]
    with pytest.raises(CommunicationError, match="rank 2"):
        manager.main_loop()
    manager, _ = _sync_manager(Net(4), on_missing="error", round_timeout=5)
    ScriptedReceiver.script = [_update(1), None]
    with pytest.raises(CommunicationTimeout, match=r"\[2, 3\]"):
        manager.main_loop()


def test_a_stuck_rank_misses_the_deadline_then_its_stale_update_is_dropped(scripted):
    manager, handler = _sync_manager(Net(4), rounds=3)
    ScriptedReceiver.script = [_update(1, 2.0), _update(2, 2.0), None]  # rank 3 never answers round 1
    ScriptedReceiver.script += [_update(3, 9.0), _update(1, 4.0), _update(2, 4.0)]  # its late update, round 2
    ScriptedReceiver.script += [_update(1), _update(2), _update(3)]  # round 3: rank 3 is back
    manager.main_loop()
    assert handler.round == 3 and manager.late == set() and handler.unavailable == set()


def test_a_handler_without_finish_round_cannot_end_a_partial_round(scripted):
    class Tutorial:
        client_num_in_total, if_stop = 0, False
        downlink_package: ClassVar[list] = [torch.zeros(D)]

        def sample_clients(self):
            return [0, 1, 2]

        def _update_global_model(self, payload):
            return False

    manager = SynchronousServerManager(Net(4), Tutorial())
    manager.coordinator = Coordinator({1: 1, 2: 1, 3: 1})
    ScriptedReceiver.script = [_update(1), scripted(2), _update(3)]
    with pytest.raises(CommunicationError, match="no finish_round"):
        manager.main_loop()


def test_round_clock_auto_deadline_and_settings():
    net = Net(2, timeout=300.0)
    clock = RoundClock("auto", floor=60.0, factor=4.0)
    assert clock.deadline(net) == 300.0  # nothing observed yet: the network's timeout
    clock.observe(2.0)
    assert clock.deadline(net) == 60.0  # the floor
    clock.observe(40.0)
    assert clock.deadline(net) == 160.0
    assert RoundClock(12, 60.0, 4.0).deadline(net) == 12.0
    with pytest.raises(ValueError, match="round_timeout"):
        RoundClock(-1, 60.0, 4.0)
    with pytest.raises(ValueError, match="round_timeout"):
        SynchronousServerManager(net, None, round_timeout="soon")


def test_async_manager_carries_on_when_a_client_dies_after_its_request(caplog):
    net = Net(3, dead={2})
    handler = AsyncParameterServerHandler(nn.Linear(3, 2), alpha=0.5, total_time=3)
    manager = AsynchronousServerManager(net, handler)
    for item in [
        (2, MessageCode.ParameterRequest, None),  # rank 2 died after asking
        (1, MessageCode.ParameterRequest, None),
        (1, MessageCode.ParameterUpdate, [torch.ones(D), torch.tensor([1.0])]),
        (1, MessageCode.ParameterRequest, None),
        (1, MessageCode.ParameterUpdate, [torch.ones(D), torch.tensor([2.0])]),
    ]:
        net.inbox.put(item)
    with caplog.at_level(logging.ERROR, logger="fastfl.server"):
        manager.main_loop()
    assert handler.time == 3 and manager.gone == {2} and net.inbox.empty()
    assert "client rank 2 could not be answered" in caplog.text


def test_async_updater_thread_override_and_queue_are_fedlabs():
    class Counting(AsynchronousServerManager):
        applied = 0

        def updater_thread(self):
            while self._handler.if_stop is not True:
                _, _, payload = self.message_queue.get()
                self._handler._update_global_model(payload)
                Counting.applied += 1

    net = Net(2)
    handler = AsyncParameterServerHandler(nn.Linear(3, 2), alpha=0.5, total_time=3)
    for t in (1.0, 2.0):
        net.inbox.put((1, MessageCode.ParameterUpdate, [torch.ones(D), torch.tensor([t])]))
    Counting(net, handler).main_loop()
    assert Counting.applied == 2 and handler.time == 3


def test_the_users_exception_is_logged_first_and_raised(caplog):
    class Failing(NetworkManager):
        def setup(self):
            pass

        def main_loop(self):
            raise ZeroDivisionError("user code divided by zero")

        def shutdown(self):
            raise CommunicationError("closing failed")

    with caplog.at_level(logging.ERROR), pytest.raises(ZeroDivisionError):
        Failing(None).run()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "ZeroDivisionError: user code divided by zero" in errors[0]
    assert "closing failed" in errors[1]


def test_update_queue_wait_idle_returns_when_the_consumer_is_waiting_again():
    q = manager_module.AsynchronousServerManager(Net(2), None).message_queue
    done = []

    def consume():
        for _ in range(2):
            done.append(q.get())

    t = threading.Thread(target=consume)
    t.start()
    q.put(1)
    q.wait_idle(t)
    assert done == [1]
    q.put(2)
    q.wait_idle(t)
    t.join(5)
    assert done == [1, 2] and not t.is_alive()


def test_a_rank_that_cannot_be_sent_its_round_is_left_out_of_that_round(scripted):
    net = Net(4, dead={2})
    manager, handler = _sync_manager(net, rounds=1)
    ScriptedReceiver.script = [_update(1, 1.0), _update(3, 3.0)]
    manager.main_loop()
    assert handler.round == 1 and manager.dead == {2}
    assert torch.allclose(handler.model_parameters, torch.full((D,), 2.0))

from __future__ import annotations

import queue
import threading

import torch

from fastfl.core.coordinator import Coordinator
from fastfl.core.network import Message
from fastfl.core.server.hierarchical import ClientConnector, ServerConnector
from fastfl.utils.message_code import MessageCode


class FakeNetwork:
    def __init__(self, rank=0, world_size=3, inbox=()):
        self.rank, self.world_size = rank, world_size
        self.sent, self.metas = [], []
        self.inbox = list(inbox)
        self.farewells = set()

    def send(self, content=None, message_code=None, dst=0, *, meta=None):
        self.sent.append((dst, message_code, content))
        self.metas.append(meta)

    def recv(self, src=None):
        return self.inbox.pop(0)[:3]

    def recv_message(self, src=None):
        message = self.inbox.pop(0)
        return Message(*message[:3], message[3] if len(message) > 3 else {})

    def watch_peers(self, on_lost, ranks=None):
        return 0


def _connector(net, up, down, counts):
    """A ClientConnector in the state its setup leaves (without the SetUp exchange)."""
    c = ClientConnector(net, write_queue=up, read_queue=down)
    c.coordinator = Coordinator(counts)
    c.group_client_num = c.coordinator.total
    c.dead, c._told_exit = set(), threading.Event()
    return c


def test_client_connector_passes_parameters_down_unchanged():
    net = FakeNetwork()
    down, up = queue.Queue(), queue.Queue()
    c = _connector(net, up, down, {1: 1, 2: 3})
    params = torch.tensor([0.25, -1.75, 3.5, 1e-3])
    down.put((0, MessageCode.ParameterUpdate, [torch.tensor([0.0, 2.0, 3.0]), params]))
    down.put((0, MessageCode.Exit, [torch.tensor([0.0, 1.0, 2.0, 3.0]), params]))
    c.process_message_queue()  # returns after forwarding Exit: no sleep, no kill
    (d1, code1, p1), (d2, code2, p2), (e1, x1, q1), (e2, x2, q2) = net.sent
    assert (d1, code1, p1[0].tolist()) == (1, MessageCode.ParameterUpdate, [0.0])
    assert (d2, code2, p2[0].tolist()) == (2, MessageCode.ParameterUpdate, [1.0, 2.0])
    for p in (p1, p2, q1, q2):
        assert p[1].dtype == torch.float32 and torch.equal(p[1], params)  # FedLab: int32-truncated
    assert (e1, x1, q1[0].tolist(), e2, x2, q2[0].tolist()) == (
        1,
        MessageCode.Exit,
        [0.0],
        2,
        MessageCode.Exit,
        [0.0, 1.0, 2.0],
    )


def test_client_connector_main_loop_forwards_up_until_exit_feedback():
    params = [torch.ones(4), torch.tensor([5.0])]
    net = FakeNetwork(inbox=[(1, MessageCode.ParameterUpdate, params), (2, MessageCode.Exit, None)])
    down, up = queue.Queue(), queue.Queue()
    c = _connector(net, up, down, {1: 1, 2: 1})
    down.put((0, MessageCode.Exit, [torch.tensor([0.0, 1.0]), torch.zeros(4)]))
    c.main_loop()
    assert up.get_nowait()[1] == MessageCode.ParameterUpdate
    assert up.get_nowait() == (None, MessageCode.Exit, None)


def test_server_connector_sends_feedback_only_after_lower_group_and_only_if_last():
    for rank, expect_feedback in ((2, True), (1, False)):
        params = [torch.zeros(4)]
        net = FakeNetwork(
            rank=rank, world_size=3, inbox=[(0, MessageCode.Exit, [torch.tensor([0.0]), *params])]
        )
        down, up = queue.Queue(), queue.Queue()
        s = ServerConnector(net, write_queue=down, read_queue=up)
        up.put((1, MessageCode.ParameterUpdate, [torch.ones(4)]))
        up.put((None, MessageCode.Exit, None))
        s.main_loop()
        assert down.get_nowait()[1] == MessageCode.Exit
        codes = [m[1] for m in net.sent]
        assert codes[0] == MessageCode.ParameterUpdate
        assert (codes[1:] == [MessageCode.Exit]) is expect_feedback


def test_package_metadata_travels_up_and_down_through_both_connectors():
    # Sample counts (and a compressed uplink's delta flag) must reach the top server unchanged,
    # or weighted FedAvg across schedulers has no counts.
    counts = {"num_samples": 37, "uplink_delta": 1}
    lower = FakeNetwork(
        inbox=[(1, MessageCode.ParameterUpdate, [torch.ones(4)], counts), (2, MessageCode.Exit, None)]
    )
    down, up = queue.Queue(), queue.Queue()
    client_side = _connector(lower, up, down, {1: 1, 2: 1})
    down.put((0, MessageCode.Exit, [torch.tensor([0.0, 1.0]), torch.zeros(4)], {"round": 3}))
    client_side.main_loop()
    assert lower.metas == [{"round": 3}, {"round": 3}]  # the downlink's metadata, to each rank

    upper = FakeNetwork(rank=2, world_size=3, inbox=[(0, MessageCode.Exit, [torch.tensor([0.0])])])
    server_side = ServerConnector(upper, write_queue=queue.Queue(), read_queue=up)
    server_side.main_loop()
    assert upper.sent[0][1] == MessageCode.ParameterUpdate
    assert upper.metas[0] == counts
    assert upper.metas[1] is None  # the exit feedback carries none

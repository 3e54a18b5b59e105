"""Compressed uplinks carry deltas: the client encodes ``local - received global`` (with error
feedback), marks ``uplink_delta``, and the server manager adds the global model back, so every
handler sees parameter vectors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastfl.contrib.compressor import CompressedUplink, QSGDCompressor, TopkCompressor
from fastfl.core._updates import UPLINK_DELTA, restore_uplink
from fastfl.core.client import PassiveClientManager
from fastfl.core.coordinator import Coordinator
from fastfl.core.network import Message
from fastfl.core.server import SyncParameterServerHandler
from fastfl.core.server import manager as manager_module
from fastfl.core.server.manager import SynchronousServerManager
from fastfl.utils.message_code import MessageCode
from tests.core.communicator.ranks import network, run_ranks
from tests.core.server.test_managers import Net, ScriptedReceiver

MODEL = (200, 100)  # nn.Linear(200, 100): 20 100 parameters
ROUNDS = 2


def _delta(rank: int, n: int, step: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(100 * rank + step)
    return torch.randn(n, generator=gen) * 0.1


class _Trainer:
    """One client whose local model is the received global plus a fixed, seeded step."""

    client_num, type = 1, 0

    def __init__(self, rank: int):
        self.rank, self.step, self.params = rank, 0, None

    def local_process(self, payload):
        self.params = payload[0] + _delta(self.rank, payload[0].numel(), self.step)
        self.step += 1

    @property
    def uplink_package(self):
        return [self.params]


class _Handler(SyncParameterServerHandler):
    """Records the global model of each round and every payload it is handed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.globals, self.payloads = [], []

    def sample_clients(self):
        self.globals.append(self.model_parameters.clone())
        return super().sample_clients()

    def _update_global_model(self, payload):
        self.payloads.append([t.clone() for t in payload])
        return super()._update_global_model(payload)


def _make(kind):
    return {
        "topk": lambda: TopkCompressor(0.01),
        "qsgd": lambda: QSGDCompressor(s=127, seed=7),
        None: lambda: None,
    }[kind]()


def _fedavg(rank: int, world: int, port: int, kind) -> dict:
    net = network(rank, world, port)
    if rank == 0:
        torch.manual_seed(0)
        handler = _Handler(nn.Linear(*MODEL), ROUNDS, 1.0, seed=0)
        manager = SynchronousServerManager(net, handler, round_timeout=None)
        manager.run()
        return {
            "globals": [g.numpy().copy() for g in handler.globals],
            "payloads": [[t.numpy().copy() for t in p] for p in handler.payloads],
            "final": handler.model_parameters.numpy().copy(),
            "recv": net.recv_volume_intotal,
        }
    PassiveClientManager(net, _Trainer(rank), compressor=_make(kind)).run()
    return {}


@pytest.mark.distributed
@pytest.mark.parametrize("kind", ["topk", "qsgd"])
def test_fedavg_round_over_gloo_hands_the_handler_parameters(free_port, kind):
    got = run_ranks(_fedavg, 3, free_port, kind, timeout=120)[0]
    globals_ = [torch.from_numpy(g) for g in got["globals"]]
    n = globals_[0].numel()
    assert len(got["payloads"]) == 2 * ROUNDS
    comps = {1: _make(kind), 2: _make(kind)}  # each client's compressor, replayed here
    want_by_round = []
    for step, glob in enumerate(globals_):
        want_by_round.append(
            {
                r: glob
                + comps[r].decode(comps[r].encode((glob + _delta(r, n, step)) - glob), (n,), torch.float32)
                for r in (1, 2)
            }
        )
    for step in range(ROUNDS):
        arrived = [torch.from_numpy(p[0]) for p in got["payloads"][2 * step : 2 * step + 2]]
        want = list(want_by_round[step].values())
        # the handler got ordinary parameters: global + the decoded delta, exactly (order of arrival varies)
        assert all(any(torch.equal(a, w) for w in want) for a in arrived), (kind, step)
        assert not any(torch.equal(a, globals_[step]) for a in arrived)
        if step + 1 < ROUNDS:
            assert torch.allclose(globals_[step + 1], (want[0] + want[1]) / 2, atol=1e-6)
    raw_bytes = 4 * n * 2 * ROUNDS
    assert got["recv"] < 0.3 * raw_bytes  # the uplinks really shrank on the wire


def test_uncompressed_uplink_carries_no_mark():
    trainer = _Trainer(1)
    assert getattr(trainer, "uplink_meta", None) is None
    wrapped = CompressedUplink(_Trainer(1), TopkCompressor(0.1))
    assert wrapped.uplink_meta is None  # no model received yet: nothing is a delta
    wrapped.local_process(payload=[torch.zeros(50)])
    assert wrapped.uplink_meta == {UPLINK_DELTA: 1}


def test_restore_uplink_is_a_no_op_without_the_mark():
    payload = [torch.ones(4)]
    out, meta = restore_uplink(payload, {"num_samples": 3}, lambda: pytest.fail("read the model"))
    assert out is payload and meta == {"num_samples": 3}
    out, meta = restore_uplink(
        [torch.ones(4), torch.tensor([2.0])], {UPLINK_DELTA: 1, "num_samples": 3}, torch.ones(4)
    )
    assert (
        torch.equal(out[0], torch.full((4,), 2.0)) and out[1].tolist() == [2.0] and meta == {"num_samples": 3}
    )
    # a narrowed downlink: the client subtracted the narrowed model, so that is what comes back
    base = torch.tensor([1.0 + 2**-12, 3.0])
    out, _ = restore_uplink([torch.zeros(2)], {UPLINK_DELTA: 1}, base, torch.bfloat16)
    assert out[0].tolist() == [1.0, 3.0]


def test_sync_manager_adds_back_the_model_it_sent(monkeypatch):
    monkeypatch.setattr(manager_module, "Receiver", ScriptedReceiver)
    net = Net(3)
    handler = _Handler(nn.Linear(3, 2), 1, 1.0, seed=0, weighted=True)
    manager = SynchronousServerManager(net, handler)
    manager.coordinator = Coordinator({1: 1, 2: 1})
    handler.client_num_in_total = 2
    sent_global = handler.model_parameters.clone()
    d1, d2 = torch.full((8,), 0.5), torch.full((8,), -0.25)
    ScriptedReceiver.script = [
        Message(1, MessageCode.ParameterUpdate, [d1], {UPLINK_DELTA: 1, "num_samples": 1}),
        Message(
            2, MessageCode.ParameterUpdate, [sent_global + d2], {"num_samples": 3}
        ),  # an uncompressed rank
    ]
    seen_meta = []
    receive_meta = handler.receive_meta
    monkeypatch.setattr(handler, "receive_meta", lambda meta: seen_meta.append(meta) or receive_meta(meta))
    manager.main_loop()
    assert torch.equal(handler.payloads[0][0], sent_global + d1)
    assert torch.equal(handler.payloads[1][0], sent_global + d2)
    assert seen_meta == [{"num_samples": 1}, {"num_samples": 3}]  # the mark never reaches a handler


def test_error_feedback_invariant_over_two_rounds_float64():
    n, comp = 5000, TopkCompressor(0.01)
    up = CompressedUplink(_Trainer(3), comp)
    sent_sum = torch.zeros(n, dtype=torch.float64)
    true_sum = torch.zeros(n, dtype=torch.float64)
    glob = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for _ in range(2):
        up.local_process(payload=[glob])
        true_sum += up.trainer.params - glob  # the true delta, in float64
        (item,) = up.uplink_package
        sent = comp.decode(item.blob, (n,), torch.float64)
        assert up.uplink_meta == {UPLINK_DELTA: 1} and torch.count_nonzero(sent) == 50
        sent_sum += sent
        glob = glob + sent  # the next round's model
    memory = comp.memory.buffer[0].double()
    assert torch.allclose(sent_sum + memory, true_sum, rtol=0, atol=1e-12)


class _AsyncNet:
    """Answers `recv_message` from a script and records sends (the asynchronous server's network)."""

    world_size, rank, timeout = 2, 0, 30.0

    def __init__(self, script):
        self.script, self.sent = list(script), []

    def send(self, content=None, message_code=None, dst=0):
        self.sent.append((dst, message_code, content))

    def recv_message(self, src=None):
        return self.script.pop(0)


def test_async_manager_adds_back_the_model_it_answered_with():
    from fastfl.core.server import AsyncParameterServerHandler
    from fastfl.core.server.manager import AsynchronousServerManager

    handler = AsyncParameterServerHandler(nn.Linear(3, 2), 1.0, 2)  # model time starts at 1
    sent_global = handler.model_parameters.clone()
    delta = torch.linspace(-1, 1, 8)
    net = _AsyncNet(
        [
            Message(1, MessageCode.ParameterRequest, [], {}),
            Message(1, MessageCode.ParameterUpdate, [delta, torch.tensor([1.0])], {UPLINK_DELTA: 1}),
        ]
    )
    AsynchronousServerManager(net, handler).main_loop()
    assert torch.equal(net.sent[0][2][0], sent_global)
    assert torch.allclose(handler.model_parameters, sent_global + delta, atol=1e-7)  # alpha 1: the update

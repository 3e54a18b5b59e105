"""Contracts C2/C3: a peer's death is an event (PeerLostError), not a timeout; the rest keep working."""

from __future__ import annotations

import os
import pickle
import signal
import time

import pytest
import torch

from fastfl.core.network import Message
from fastfl.core.server._receiver import Receiver
from fastfl.errors import CommunicationError, PeerLostError
from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(120)]

NETWORK_TIMEOUT = 60  # the loss must be reported long before any network timeout


def _server_sees_a_dead_client(rank: int, world: int, port: int) -> dict | None:
    net = network(rank, world, port, timeout=NETWORK_TIMEOUT)
    net.init_network_connection()
    if rank == 1:
        net.recv(0)  # "start": then die without a word
        os.kill(os.getpid(), signal.SIGKILL)
    if rank == 2:
        net.recv(0)
        net.send(torch.arange(3.0), MessageCode.ParameterUpdate, 0, meta={"num_samples": 7})
        net.recv(0)  # Exit
        net.close_network_connection()
        return None
    rx = Receiver(net)
    for peer in (1, 2):
        net.send(torch.zeros(1), MessageCode.ParameterUpdate, peer)
    got: list = []
    started = time.monotonic()
    while len(got) < 3 and time.monotonic() - started < NETWORK_TIMEOUT / 2:
        try:
            message = rx.get(NETWORK_TIMEOUT / 2)
        except PeerLostError as err:
            got.append(("lost", err.rank, str(err)))
            continue
        assert isinstance(message, Message)
        got.append(("message", message.sender, message.message_code.name, message.content[0].tolist()))
        got.append(("meta", message.sender, message.meta))
    net.send(None, MessageCode.Exit, 2)  # rank 2 leaves after an Exit: not a loss
    late = rx.get(3.0)
    net.close_network_connection()
    return {"got": sorted(got), "late": late, "lost": sorted(rx.lost)}


def test_a_dead_peer_is_reported_once_and_the_others_keep_talking(free_port):
    result = run_ranks(_server_sees_a_dead_client, 3, free_port, timeout=90, silent=[1])[0]
    (kind, rank, text), message, meta = result["got"]
    assert (kind, rank) == ("lost", 1) and "rank 1" in text and "closed" in text
    assert message == ("message", 2, "ParameterUpdate", [0.0, 1.0, 2.0])
    assert meta == ("meta", 2, {"num_samples": 7})
    assert result["late"] is None and result["lost"] == [1]


def _client_sees_a_dead_server(rank: int, world: int, port: int) -> str | None:
    net = network(rank, world, port, timeout=NETWORK_TIMEOUT)
    net.init_network_connection()
    if rank == 0:
        net.recv(1)
        os.kill(os.getpid(), signal.SIGKILL)
    net.send(torch.zeros(1), MessageCode.ParameterRequest, 0)
    try:
        net.recv(0)
    except PeerLostError as err:
        return f"{err.rank}: {err}"
    finally:
        net.close_network_connection()
    return None


def test_a_receive_from_a_dead_rank_raises_peer_lost(free_port):
    text = run_ranks(_client_sees_a_dead_server, 2, free_port, timeout=90, silent=[0])[1]
    assert text is not None and text.startswith("0: receiving a package header") and "closed" in text


def test_peer_lost_error_is_a_communication_error_and_pickles():
    err = PeerLostError(3)
    assert isinstance(err, CommunicationError) and isinstance(err, RuntimeError)
    again = pickle.loads(pickle.dumps(err))
    assert again.rank == 3 and str(again) == str(err) and "rank 3" in str(err)

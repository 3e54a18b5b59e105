"""Failures between real processes: a peer that dies mid-message, timeouts, garbage and bad codes."""

from __future__ import annotations

import os
import time

import pytest
import torch
import torch.distributed as dist

from fastfl.core.communicator import Package, PackageProcessor
from fastfl.errors import CommunicationError, CommunicationTimeout, WireFormatError
from fastfl.utils import MessageCode
from tests.core.communicator.ranks import network, run_ranks

pytestmark = pytest.mark.distributed


def _dies_mid_message(rank: int, world: int, port: int) -> str:
    net = network(rank, world, port, timeout=20)
    net.init_network_connection()
    if rank == 1:
        frame, _body = Package(MessageCode.ParameterUpdate, torch.zeros(100_000)).wire_parts(1, 0)
        dist.send(frame, 0)  # the header promises a 400 KB body that never comes
        time.sleep(0.5)
        os._exit(1)
    start = time.monotonic()
    try:
        net.recv(1)
    except CommunicationError as err:
        assert time.monotonic() - start < 20
        return type(err).__name__ + ": " + str(err)
    finally:
        net.close_network_connection()
    return "no error"


def test_peer_dying_mid_message_gives_an_error_not_a_hang(free_port):
    results = run_ranks(_dies_mid_message, 2, free_port, timeout=60, silent=[1])
    assert "receiving a package body" in results[0]
    assert "closed" in results[0] or "timeout" in results[0]


def _times_out(rank: int, world: int, port: int) -> list[str]:
    net = network(rank, world, port, timeout=1.5)
    net.init_network_connection()
    try:
        if rank == 1:
            time.sleep(4)  # stays alive but silent while rank 0 waits
            return []
        errors = []
        for _ in range(2):
            try:
                net.recv(1)
            except CommunicationError as err:
                errors.append(type(err).__name__ + ": " + str(err))
        return errors
    finally:
        net.close_network_connection()


def test_timeout_raises_and_then_the_network_refuses_further_use(free_port):
    results = run_ranks(_times_out, 2, free_port, timeout=60)
    first, second = results[0]
    assert first.startswith(CommunicationTimeout.__name__) and "within 1.5 s" in first
    assert "unusable after an earlier failure" in second


def _bad_input(rank: int, world: int, port: int) -> list[str]:
    net = network(rank, world, port, timeout=20)
    net.init_network_connection()
    try:
        if rank == 1:
            dist.send(torch.randint(0, 255, (8192,), dtype=torch.uint8), 0)  # garbage frame
            bad = Package(42, torch.ones(3))
            PackageProcessor.send_package(bad, 0)  # unknown message code, valid otherwise
            net.send(torch.arange(3.0), MessageCode.ParameterUpdate, 0)
            return []
        errors = []
        for _ in range(2):
            try:
                net.recv(1)
            except WireFormatError as err:
                errors.append(str(err))
        sender, code, content = net.recv(1)  # the stream is still in step
        assert (sender, code) == (1, MessageCode.ParameterUpdate) and content[0].tolist() == [0.0, 1.0, 2.0]
        return errors
    finally:
        net.close_network_connection()


def test_garbage_and_unknown_codes_raise_and_lose_nothing(free_port):
    garbage, code = run_ranks(_bad_input, 2, free_port, timeout=60)[0]
    assert "bad magic" in garbage
    assert "unknown message code 42 from rank 1" in code


def _misuse(rank: int, world: int, port: int) -> list[str]:
    net = network(rank, world, port, timeout=20)
    net.init_network_connection()
    errors = []
    try:
        for call in (lambda: net.send(torch.ones(1), 0, dst=rank), lambda: net.send(torch.ones(1), 0, dst=5)):
            try:
                call()
            except ValueError as err:
                errors.append(str(err))
        return errors
    finally:
        net.close_network_connection()


def test_sending_to_self_or_a_missing_rank_is_refused(free_port):
    results = run_ranks(_misuse, 2, free_port, timeout=60)
    own, missing = results[0]
    assert "own rank" in own and "rank in 0..1" in missing

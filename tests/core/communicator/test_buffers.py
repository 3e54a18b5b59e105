"""Reuse of receive and package memory: only once nothing made from it is alive (buffers.HostBlock)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from fastfl import ops
from fastfl.core.communicator import Package, PackageProcessor, reader, transport, wire
from fastfl.core.communicator.buffers import PACKAGE_BUFFERS, BodyBuffers, BufferPool, FrameRing, HostBlock
from fastfl.utils import MessageCode

BIG = 1 << 20


# ---- HostBlock: the rule ----------------------------------------------------------------------

# Every way a caller can keep bytes of a handed-out tensor alive.
KEEPERS = {
    "tensor": lambda t: t,
    "slice": lambda t: t[1:3],
    "reshape": lambda t: t.view(2, -1),
    "dtype-view": lambda t: t.view(torch.uint8),
    "numpy": lambda t: t.numpy(),
    "numpy-slice": lambda t: t.numpy()[1:],
    "memoryview": lambda t: memoryview(t.numpy()),
    "storage": lambda t: t.untyped_storage(),
    "from-numpy": lambda t: torch.from_numpy(t.numpy()),
    "in-a-list": lambda t: [t],
    "expand": lambda t: t.reshape(-1)[:1].expand(4),
}


def _bytes_of(kept: object) -> bytes:
    if isinstance(kept, list):
        kept = kept[0]
    if isinstance(kept, torch.UntypedStorage):
        return torch.empty(0, dtype=torch.uint8).set_(kept).numpy().tobytes()
    if isinstance(kept, memoryview):
        return kept.tobytes()
    return np.ascontiguousarray(np.asarray(kept)).tobytes()


@pytest.mark.parametrize("keep", list(KEEPERS.values()), ids=list(KEEPERS))
def test_block_is_busy_while_anything_made_from_a_handed_out_tensor_lives(keep):
    block = HostBlock(64)
    t = block.hand_out(torch.frombuffer(block.mem, dtype=torch.float32, count=4))
    t.copy_(torch.arange(4.0))
    kept = keep(t)
    del t
    assert not block.free()
    before = _bytes_of(kept)
    del kept
    assert block.free()
    assert before  # what was kept was readable while the block was busy


@pytest.mark.parametrize("keep", list(KEEPERS.values()), ids=list(KEEPERS))
def test_large_block_memory_is_not_handed_out_again_while_anything_holds_it(keep):
    nbytes = ops.LARGE_BYTES
    block = HostBlock(nbytes)
    t = block.hand_out(torch.frombuffer(block.mem, dtype=torch.float32, count=nbytes // 4))
    t.fill_(7.0)
    kept = keep(t)
    before = _bytes_of(kept)
    del t, block  # only `kept` holds the memory now
    others = [ops.empty(nbytes, dtype=torch.uint8) for _ in range(3)]  # would take pooled memory
    for other in others:
        other.fill_(1)
    assert _bytes_of(kept) == before


def test_copies_do_not_hold_the_block():
    block = HostBlock(64)
    t = block.tensor()
    copies = [t.clone(), t.float(), t.numpy().copy(), t + 1]
    del t
    assert block.free() and len(copies) == 4


def test_unwatched_whole_does_not_hold_the_block():
    block = HostBlock(64)
    assert block.whole.numel() == 64 and block.free()


# ---- the receive path: frames and bodies are reused only when free --------------------------


class FakeLink:
    """transport.recv fed from a queue of sent parts (what PackageProcessor does, without gloo)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parts: collections.deque[torch.Tensor] = collections.deque()
        self.into: list[int] = []
        monkeypatch.setattr(transport, "recv", self.recv)

    def send(self, package: Package) -> None:
        self.parts.extend(p.clone() for p in package.wire_parts(1, 0))

    def recv(self, buf: torch.Tensor, src: int | None, timeout: float, what: str) -> int:
        part = self.parts.popleft()
        assert part.numel() == buf.numel(), what
        buf.copy_(part)
        self.into.append(buf.data_ptr())
        return 1


GROUP = transport.Group(rank=0, world_size=2, device=torch.device("cpu"))
SETTINGS = PackageProcessor(timeout=5.0, max_tensors=1000)


# 48 bytes: inline in the frame; 80 KB: a reusable second transfer; 4.8 MB: a body in
# fastfl.ops.empty memory (huge-page-advised, from the native pool once freed).
SIZES = {"frame": 12, "body": 20_000, "large": 1_200_000}


def _package(value: float, size: str) -> Package:
    n = SIZES[size]
    return Package(MessageCode.ParameterUpdate, [torch.full((n // 4, 4), value), torch.arange(5)])


@pytest.mark.parametrize("big", list(SIZES))
@pytest.mark.parametrize("keep", list(KEEPERS.values()), ids=list(KEEPERS))
def test_received_memory_is_kept_while_referenced_then_reused(monkeypatch, keep, big):
    link = FakeLink(monkeypatch)
    frames, bodies = FrameRing(wire.FRAME_BYTES, slots=2), BodyBuffers(slots=2)

    def receive(value: float) -> tuple[int, list[torch.Tensor]]:
        link.send(_package(value, big))
        got = reader.receive(None, GROUP, SETTINGS, frames, bodies)
        assert torch.equal(got.content[0], torch.full_like(got.content[0], value))
        return link.into[-1], got.content

    first, tensors = receive(1.0)
    kept = keep(tensors[0])
    before = _bytes_of(kept)
    del tensors
    for value in (2.0, 3.0, 4.0):  # more receives than slots: the kept memory is never reused
        address, received = receive(value)
        assert address != first
        del received
    assert _bytes_of(kept) == before
    del kept
    addresses = {receive(5.0)[0] for _ in range(3)}
    assert len(addresses) == 1  # each package dropped at once: the same memory every time


def test_frame_ring_without_slots_always_allocates(monkeypatch):
    link = FakeLink(monkeypatch)
    frames = FrameRing(wire.FRAME_BYTES, slots=0)
    for value in (1.0, 2.0):
        link.send(_package(value, "frame"))
        got = reader.receive(None, GROUP, SETTINGS, frames, BodyBuffers())
        assert got.content[0][0, 0] == value
    assert frames._frames == []


# ---- BodyBuffers and BufferPool ---------------------------------------------------------------


def test_body_buffers_alternate_while_the_previous_package_is_held():
    bodies = BodyBuffers(slots=2)
    a = bodies.take(BIG)
    held_a = a.tensor()
    b = bodies.take(BIG)
    assert b is not a
    held_b = b.tensor()
    del held_a
    assert bodies.take(BIG) is a and held_b.numel() == BIG


def test_body_buffers_too_small_or_off_are_not_reused():
    bodies = BodyBuffers()
    small = bodies.take(BIG)
    assert bodies.take(2 * BIG) is not small
    off = BodyBuffers(reuse=False)
    off.take(BIG)
    assert off._spares == []


def test_pool_reuses_a_dead_package_buffer_only_when_unreferenced():
    PACKAGE_BUFFERS.clear()
    first = Package(0, torch.full((1 << 20,), 1.0))  # 4 MB
    kept = first.tensors[0]
    ptr = first._pack.buf.data_ptr()
    del first
    second = Package(0, torch.full((1 << 20,), 2.0))
    assert second._pack.buf.data_ptr() != ptr  # `kept` still views the first buffer
    assert bool((kept == 1.0).all())
    del kept
    third = Package(0, torch.full((1 << 20,), 3.0))
    assert third._pack.buf.data_ptr() == ptr
    assert bool((third.tensors[0] == 3.0).all())
    PACKAGE_BUFFERS.clear()


def test_pool_is_bounded():
    pool = BufferPool(max_buffers=2, max_bytes=3 * BIG)
    for _ in range(3):
        pool.give(HostBlock(BIG))
    assert len(pool._blocks) == 2 and pool.nbytes == 2 * BIG
    pool.give(HostBlock(2 * BIG))
    assert pool.nbytes <= 3 * BIG
    assert pool.take(4 * BIG) is None  # nothing large enough
    assert pool.take(BIG // 4) is None  # would waste more than half
    pool.clear()
    assert pool.nbytes == 0

from __future__ import annotations

import pytest
import torch

from fastfl.core.communicator import Package, reader, wire
from fastfl.core.communicator.buffers import _BASELINE, BodyBuffers, FrameRing
from fastfl.utils import MessageCode

CPU = torch.device("cpu")
BIG = 1 << 20

pytestmark = pytest.mark.skipif(_BASELINE is None, reason="torch does not expose storage use counts")


def test_free_buffer_is_reused():
    pool = BodyBuffers()
    first = pool.take(BIG, CPU)
    ptr = first.data_ptr()
    del first
    again = pool.take(BIG // 2, CPU)
    assert again.data_ptr() == ptr and again.numel() == BIG // 2


def test_buffer_with_a_live_view_is_not_reused():
    pool = BodyBuffers(slots=1)
    first = pool.take(BIG, CPU)
    view = first[10:20].view(torch.int16)
    ptr = first.data_ptr()
    del first
    second = pool.take(BIG, CPU)
    assert second.data_ptr() != ptr
    view.fill_(3)  # the earlier package's tensor is untouched by the new receive
    second.fill_(0)
    assert view.tolist() == [3] * 5


def test_two_slots_alternate_while_the_previous_package_is_held():
    pool = BodyBuffers(slots=2)
    a = pool.take(BIG, CPU)
    b = pool.take(BIG, CPU)  # `a` still held: a second buffer
    ptr_a = a.data_ptr()
    del a
    c = pool.take(BIG, CPU)  # `b` held, `a` free again
    assert c.data_ptr() == ptr_a and b.data_ptr() != ptr_a


def test_too_small_spare_is_not_reused_and_reuse_can_be_off():
    pool = BodyBuffers()
    small = pool.take(BIG, CPU)
    ptr = small.data_ptr()
    del small
    assert pool.take(2 * BIG, CPU).data_ptr() != ptr
    off = BodyBuffers(reuse=False)
    assert off.take(BIG, CPU).numel() == BIG
    assert off._spares == []


def test_pool_reuses_a_dead_package_buffer_only_when_unreferenced():
    from fastfl.core.communicator import Package
    from fastfl.core.communicator.buffers import PACKAGE_BUFFERS

    PACKAGE_BUFFERS.clear()
    first = Package(0, torch.full((1 << 20,), 1.0))  # 4 MB: a huge-page numpy buffer
    kept = first.tensors[0]
    ptr = first._buf.data_ptr()
    del first
    second = Package(0, torch.full((1 << 20,), 2.0))
    assert second._buf.data_ptr() != ptr  # `kept` still views the first buffer
    assert bool((kept == 1.0).all())
    del kept
    third = Package(0, torch.full((1 << 20,), 3.0))
    assert third._buf.data_ptr() == ptr
    assert bool((third.tensors[0] == 3.0).all())
    PACKAGE_BUFFERS.clear()


def test_pool_is_bounded():
    from fastfl.core.communicator.buffers import BufferPool

    pool = BufferPool(max_buffers=2, max_bytes=3 * BIG)
    for _ in range(3):
        pool.give(torch.empty(BIG, dtype=torch.uint8))
    assert len(pool._buffers) == 2 and pool.nbytes == 2 * BIG
    pool.give(torch.empty(2 * BIG, dtype=torch.uint8))
    assert pool.nbytes <= 3 * BIG
    assert pool.take(4 * BIG) is None  # nothing large enough
    assert pool.take(BIG // 4) is None  # would waste more than half
    pool.clear()
    assert pool.nbytes == 0


# ---- FrameRing: a receive frame is reused only when nothing received from it is alive ---------
# The ring judges by the reference count of the frame's numpy array, so the tests keep only its
# address (never the array itself) between receives.


def _receive_into(ring: FrameRing, package: Package) -> tuple[int, list[torch.Tensor]]:
    """What PackageProcessor does for a small package: take a frame, fill it, cut the tensors out.

    Returns the frame's address and the received tensors.
    """
    host, frame = ring.take()
    (sent,) = package.wire_parts(sender=1, receiver=0)
    frame.copy_(sent)
    head = wire.decode_header(host[: wire.HEADER_BYTES])
    tensors, _ = reader.unpack_inline(host, head)
    return host.ctypes.data, tensors


def _values(kept: object) -> list:
    if isinstance(kept, torch.UntypedStorage):
        return kept.tolist()
    return torch.as_tensor(kept).tolist()


def _small_package(value: float) -> Package:
    return Package(MessageCode.ParameterUpdate, [torch.full((3, 4), value), torch.arange(5)])


@pytest.mark.parametrize(
    "keep",
    [
        lambda ts: ts[0],  # a received tensor
        lambda ts: ts[0][1:, 2],  # a slice of one
        lambda ts: ts[1].numpy(),  # its numpy view
        lambda ts: ts[0].untyped_storage(),  # its storage
        lambda ts: ts[1].view(torch.uint8),  # a dtype view
    ],
    ids=["tensor", "slice", "numpy", "storage", "dtype-view"],
)
def test_frame_ring_keeps_a_frame_that_is_still_referenced(keep):
    ring = FrameRing(wire.FRAME_BYTES, slots=2)
    first, tensors = _receive_into(ring, _small_package(1.0))
    kept = keep(tensors)
    before = _values(kept)
    del tensors
    for value in (2.0, 3.0, 4.0):  # more receives than slots: the kept frame must never be reused
        address, received = _receive_into(ring, _small_package(value))
        assert address != first
        assert torch.equal(received[0], torch.full((3, 4), value))
        del received
    assert _values(kept) == before  # what the caller kept still holds what it received


def test_frame_ring_reuses_a_frame_once_everything_from_it_is_dropped():
    ring = FrameRing(wire.FRAME_BYTES, slots=2)
    first, tensors = _receive_into(ring, _small_package(1.0))
    part = tensors[0][0]
    del tensors
    second, busy = _receive_into(ring, _small_package(2.0))
    assert second != first  # the first frame is still referenced through `part`
    del part
    third, received = _receive_into(ring, _small_package(3.0))
    assert third == first  # freed, so reused: no new allocation
    assert torch.equal(received[0], torch.full((3, 4), 3.0))
    assert torch.equal(busy[0], torch.full((3, 4), 2.0))


def test_frame_ring_without_slots_always_allocates():
    ring = FrameRing(wire.FRAME_BYTES, slots=0)
    for value in (1.0, 2.0, 3.0):
        _, tensors = _receive_into(ring, _small_package(value))
        assert torch.equal(tensors[0], torch.full((3, 4), value))
        del tensors
    assert len(ring._frames) == 0

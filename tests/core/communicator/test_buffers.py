from __future__ import annotations

import pytest
import torch

from fastfl.core.communicator.buffers import _BASELINE, BodyBuffers

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
    pool = BodyBuffers()
    first = pool.take(BIG, CPU)
    view = first[10:20].view(torch.int16)
    ptr = first.data_ptr()
    del first
    second = pool.take(BIG, CPU)
    assert second.data_ptr() != ptr
    view.fill_(3)  # the earlier package's tensor is untouched by the new receive
    second.fill_(0)
    assert view.tolist() == [3] * 5


def test_too_small_spare_is_not_reused_and_reuse_can_be_off():
    pool = BodyBuffers()
    small = pool.take(BIG, CPU)
    ptr = small.data_ptr()
    del small
    assert pool.take(2 * BIG, CPU).data_ptr() != ptr
    off = BodyBuffers(reuse=False)
    assert off.take(BIG, CPU).numel() == BIG
    assert off._spare is None

"""ops.empty: large CPU buffers on huge-page-advised memory, reused from a pool only when free."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from fastfl import ops
from fastfl.errors import KernelArgumentError, KernelTypeError

LARGE = ops.LARGE_BYTES // 4 + 1000  # float32 elements just over the threshold


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool])
def test_empty_gives_an_ordinary_tensor(backend, dtype):
    t = ops.empty((3, LARGE // 3), dtype=dtype)
    assert t.shape == (3, LARGE // 3) and t.dtype == dtype and t.is_contiguous() and t.device.type == "cpu"
    assert t.storage_offset() == 0 and t._base is None
    t.fill_(1)
    assert torch.equal(copy.deepcopy(t), t)
    buf = io.BytesIO()
    torch.save(t, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf), t)
    assert torch.equal(pickle.loads(pickle.dumps(t)), t)


def test_small_buffers_and_int_shapes(backend):
    assert ops.empty(5).shape == (5,)
    assert ops.empty((), dtype=torch.float64).shape == ()
    assert ops.empty([0, 4]).numel() == 0


def test_large_native_buffers_are_huge_page_aligned_and_reused_only_when_free():
    native = pytest.importorskip("fastfl.ops._native", reason="the native extension is not built")
    with ops.using("native"):
        previous = ops.set_pool_limit(64 << 20)
        try:
            a = ops.empty(LARGE)
            assert a.data_ptr() % (2 << 20) == 0
            view = a[10:20]
            address = a.data_ptr()
            del a
            b = ops.empty(LARGE)  # the view keeps a's storage alive: no reuse
            assert b.data_ptr() != address
            view.fill_(7)
            del view
            assert native._C.pooled_bytes() > 0
            c = ops.empty(LARGE)
            assert c.data_ptr() == address  # freed, so handed out again warm
            del b, c
            ops.set_pool_limit(0)
            assert native._C.pooled_bytes() == 0
            d = ops.empty(LARGE)
            d.fill_(3.0)
            assert torch.equal(d, torch.full_like(d, 3.0))
        finally:
            ops.set_pool_limit(previous)


def test_large_buffers_can_be_shared_between_processes():
    t = ops.empty(LARGE)
    t.fill_(2.0)
    t.share_memory_()
    assert t.is_shared() and bool((t == 2.0).all())


def test_bad_arguments_name_the_problem():
    with pytest.raises(KernelArgumentError, match="negative"):
        ops.empty((2, -1))
    with pytest.raises(KernelTypeError, match="dtype"):
        ops.empty(4, dtype=torch.complex64)
    with pytest.raises(KernelArgumentError, match="nbytes"):
        ops.set_pool_limit(-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_empty_on_cuda_is_torch_empty():
    t = ops.empty(LARGE, device="cuda")
    assert t.is_cuda and t.numel() == LARGE

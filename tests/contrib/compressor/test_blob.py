"""Decoding checks every blob before trusting it: a corrupt or truncated blob is a WireFormatError."""

from __future__ import annotations

import pytest
import torch

from fastfl.contrib.compressor import CastCompressor, QSGDCompressor, TopkCompressor
from fastfl.errors import WireFormatError


def test_qsgd_blob_errors():
    comp = QSGDCompressor(s=3)
    blob = comp.encode(torch.randn(10))
    with pytest.raises(WireFormatError, match="has 20 bytes, got 19"):
        comp.decode(blob[:-1], (10,), torch.float32)
    with pytest.raises(WireFormatError, match="at least 16 bytes"):
        comp.decode(blob[:5], (10,), torch.float32)
    bad = blob.clone()
    bad[0] = 9
    with pytest.raises(WireFormatError, match="version 9"):
        comp.decode(bad, (10,), torch.float32)
    bad = blob.clone()
    bad[1] = 5
    with pytest.raises(WireFormatError, match="header is corrupt"):
        comp.decode(bad, (10,), torch.float32)
    bad = blob.clone()
    bad[16:] = 0xFF  # every code's level is 3 = s, the sign set; then a level above s:
    bad[2] = 2  # s = 2 keeps 3 bits, so level 3 is out of range
    with pytest.raises(WireFormatError, match="levels above s=2"):
        comp.decode(bad, (10,), torch.float32)
    with pytest.raises(WireFormatError, match="floating tensors only"):
        comp.decode(blob, (10,), torch.int32)
    with pytest.raises(WireFormatError, match="1-D uint8"):
        comp.decode(blob.float(), (10,), torch.float32)


def test_sparse_blob_errors():
    comp = TopkCompressor(0.5, error_feedback=False)
    blob = comp.encode(torch.randn(10))
    with pytest.raises(WireFormatError, match="k=5 for 4 elements"):
        comp.decode(blob, (4,), torch.float32)
    bad = blob.clone()
    bad[16:20] = torch.tensor([99, 0, 0, 0], dtype=torch.uint8)  # first index 99
    with pytest.raises(WireFormatError, match="outside \\[0, 10\\)"):
        comp.decode(bad, (10,), torch.float32)
    bad = blob.clone()
    bad[2] = 3  # value dtype int64
    with pytest.raises(WireFormatError, match=r"value dtype torch\.int64"):
        comp.decode(bad, (10,), torch.float32)


def test_misaligned_blob_decodes():
    x = torch.randn(64, dtype=torch.float64)
    comp = TopkCompressor(0.25, error_feedback=False)
    blob = comp.encode(x)
    shifted = torch.empty(blob.numel() + 1, dtype=torch.uint8)[1:]
    shifted.copy_(blob)
    assert torch.equal(comp.decode(shifted, (64,), torch.float64), comp.decode(blob, (64,), torch.float64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cast_round_trip(dtype):
    x = torch.randn(3, 5)
    comp = CastCompressor(dtype)
    narrow = comp.encode(x)
    assert narrow.dtype == dtype and narrow.shape == x.shape
    assert torch.equal(narrow, x.to(dtype))
    assert torch.equal(comp.decode(narrow, (15,), torch.float32), x.to(dtype).float().view(15))

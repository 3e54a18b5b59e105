"""Every kernel, the serializer and the aggregators on CUDA tensors (the torch backend's path).

Skipped where no GPU exists. Each result is compared with the same call on CPU tensors.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastfl import ops
from fastfl.utils import Aggregators, SerializationTool
from fastfl.utils._streaming import StreamingAggregator

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
F32, F16, BF16, F64 = torch.float32, torch.float16, torch.bfloat16, torch.float64


def _gpu(ts):
    return [t.cuda() for t in ts]


def test_flatten_unflatten_and_cast_on_cuda_equal_cpu():
    ts = [torch.randn(3, 5), torch.randn(7, dtype=F64), torch.randn(11).to(F16)]
    cpu = ops.flatten(ts, dtype=F32)
    gpu = ops.flatten(_gpu(ts), dtype=F32)
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
    back = [torch.empty_like(t) for t in _gpu(ts)]
    ops.unflatten_(gpu, back)
    for b, t in zip(back, ts, strict=True):
        assert torch.equal(b.cpu(), t.to(F32).to(t.dtype))
    ops.unflatten_(gpu, back, mode="add")
    for b, t in zip(back, ts, strict=True):
        torch.testing.assert_close(b.cpu(), (t.to(F32) * 2).to(t.dtype))
    x = torch.randn(10_001)
    for dt in (F16, BF16, F64, torch.int32):
        assert torch.equal(ops.cast(x.cuda(), dt).cpu(), x.to(dt))


def test_aggregation_kernels_on_cuda_equal_cpu():
    xs = [torch.randn(5000) for _ in range(4)]
    ws = [0.1, 0.2, 0.3, 0.4]
    torch.testing.assert_close(ops.weighted_sum(_gpu(xs), ws).cpu(), ops.weighted_sum(xs, ws))
    acc, acc_gpu = torch.zeros(5000), torch.zeros(5000, device="cuda")
    ops.accumulate_(acc, xs[0], 0.5)
    ops.accumulate_(acc_gpu, xs[0].cuda(), 0.5)
    torch.testing.assert_close(acc_gpu.cpu(), acc)
    s, s_gpu = xs[1].clone(), xs[1].cuda()
    ops.mix_(s, xs[2], 0.3)
    ops.mix_(s_gpu, xs[2].cuda(), 0.3)
    torch.testing.assert_close(s_gpu.cpu(), s)


def test_pack_and_empty_on_cuda():
    ts = [torch.randn(4), torch.randn(3, dtype=F64)]
    out = torch.zeros(40, dtype=torch.uint8, device="cuda")
    ops.pack(_gpu(ts), [0, 16], [F32, F64], out=out)
    assert torch.equal(out[:16].view(F32).cpu(), ts[0]) and torch.equal(out[16:].view(F64).cpu(), ts[1])
    big = ops.empty(ops.LARGE_BYTES, dtype=torch.uint8, device="cuda")
    assert big.is_cuda


def test_aggregators_and_streaming_on_cuda():
    xs = [torch.randn(3, 7) for _ in range(5)]
    ws = [1.0, 2.0, 3.0, 4.0, 5.0]
    got = Aggregators.fedavg_aggregate(_gpu(xs), ws)
    assert got.is_cuda
    torch.testing.assert_close(got.cpu(), Aggregators.fedavg_aggregate(xs, ws))
    mixed = Aggregators.fedasync_aggregate(xs[0].cuda(), xs[1].cuda(), 0.25)
    torch.testing.assert_close(mixed.cpu(), Aggregators.fedasync_aggregate(xs[0], xs[1], 0.25))
    stream = StreamingAggregator()
    for x, w in zip(_gpu(xs), ws, strict=True):
        stream.add(x.reshape(-1), w)
    torch.testing.assert_close(stream.result().cpu(), Aggregators.fedavg_aggregate(xs, ws).reshape(-1))


def test_serialization_round_trip_on_cuda():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2)).cuda()
    flat = SerializationTool.serialize_model(model)
    assert flat.device.type == "cpu"
    SerializationTool.deserialize_model(model, flat.cuda() * 3)
    torch.testing.assert_close(SerializationTool.serialize_model(model), flat * 3)
    SerializationTool.deserialize_model(model, flat, mode="sub")
    torch.testing.assert_close(SerializationTool.serialize_model(model), flat * 2)

"""GPU figures (skipped without CUDA): FedAvg, serialize and deserialize on CUDA tensors.

fastfl routes CUDA tensors to its torch backend; these cases record what that costs next to
FedLab 1.2.1's algorithm and a device-to-device copy of the same bytes, in one run.
"""

from __future__ import annotations

import copy

import baselines
import pytest
import torch
from conftest import client_updates, tensor_set

from fastfl.utils import Aggregators, SerializationTool

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _timed(benchmark, group, fn, nbytes):
    benchmark.group = group
    benchmark.extra_info["bytes"] = int(nbytes)
    benchmark.extra_info["device"] = torch.cuda.get_device_name()

    def run():
        result = fn()
        torch.cuda.synchronize()
        return result

    return benchmark(run)


@pytest.mark.parametrize("impl", ["fastfl-api", "fastfl-api-out", "fedlab", "copy"])
def bench_cuda_fedavg(benchmark, impl):
    rows = client_updates("resnet18", 10).cuda()
    xs, ws = list(rows), [1.0 / 10] * 10
    out = torch.empty(rows.shape[1], device="cuda")
    fns = {
        "fastfl-api": lambda: Aggregators.fedavg_aggregate(xs, ws),
        "fastfl-api-out": lambda: Aggregators.fedavg_aggregate(xs, ws, out=out),
        "fedlab": lambda: baselines.fedavg_aggregate(xs, ws),
        "copy": lambda: out.copy_(rows[0]),
    }
    result = _timed(benchmark, "cuda fedavg resnet18 K=10", fns[impl], 11 * rows[0].nbytes)
    if impl != "copy":
        torch.testing.assert_close(result, rows.mean(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", ["fastfl-api", "fedlab", "deserialize", "fedlab-deserialize"])
def bench_cuda_serialize(benchmark, impl):
    model = copy.deepcopy(tensor_set("resnet18").model).cuda()
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    fns = {
        "fastfl-api": lambda: SerializationTool.serialize_model(model),
        "fedlab": lambda: baselines.serialize_model(model),
        "deserialize": lambda: SerializationTool.deserialize_model(model, flat),
        "fedlab-deserialize": lambda: baselines.deserialize_model(model, flat),
    }
    result = _timed(benchmark, "cuda serialize resnet18", fns[impl], 2 * flat.nbytes)
    if impl in ("fastfl-api", "fedlab"):
        assert torch.equal(result, flat.cpu())

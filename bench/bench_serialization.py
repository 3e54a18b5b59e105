"""Serialization benchmarks: a model's parameters into one flat vector and back.

serialize: fastfl (kernel and SerializationTool, into a reused buffer and allocating) vs FedLab's
cat-then-cpu vs torch.cat(out=) vs parameters_to_vector; deserialize: fastfl vs FedLab's Python
loop vs torch._foreach_copy_. Each group also times a plain copy and read of the same bytes.
"""

from __future__ import annotations

import functools

import baselines
import pytest
import torch
from bench_kernels import YARDSTICKS, _with_backend, _yardstick
from conftest import client_updates, fastfl_backends, tensor_set
from torch.nn.utils import parameters_to_vector

from fastfl import ops
from fastfl.utils import SerializationTool

BACKENDS = fastfl_backends()
SETS = ["mlp", "cnn", "resnet18"]
SERIALIZE_IMPLS = [f"fastfl-{b}" for b in BACKENDS] + ["fastfl-api", "fastfl-api-alloc", "fedlab"]
SERIALIZE_IMPLS += ["torch-cat-out", "torch-parameters_to_vector"]
DESERIALIZE_IMPLS = [f"fastfl-{b}" for b in BACKENDS] + ["fastfl-api", "fedlab", "torch-foreach-copy"]


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("impl", SERIALIZE_IMPLS + YARDSTICKS)
def bench_serialize(measure, impl, name):
    ts = tensor_set(name)
    group = f"serialize {name}"
    if impl in YARDSTICKS:
        _yardstick(measure, group, impl, client_updates(name, 1)[0])
        return
    out = torch.empty(ts.numel)
    params = ts.params
    if impl.startswith("fastfl-") and impl[7:] in BACKENDS:
        fn = functools.partial(_with_backend, impl[7:], ops.flatten, params, out=out)
    elif impl == "fastfl-api":
        fn = functools.partial(SerializationTool.serialize_model, ts.model, out=out)
    elif impl == "fastfl-api-alloc":
        fn = functools.partial(SerializationTool.serialize_model, ts.model)
    elif impl == "fedlab":
        fn = functools.partial(baselines.serialize_model, ts.model)
    elif impl == "torch-cat-out":
        fn = lambda: torch.cat([p.view(-1) for p in params], out=out)
    else:
        fn = functools.partial(parameters_to_vector, params)
    expected = torch.cat([p.flatten() for p in params])

    def check(result):
        assert torch.equal(result, expected)

    measure(group, fn, check, 2 * ts.nbytes, n=ts.numel, tensors=len(params))


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("impl", DESERIALIZE_IMPLS + YARDSTICKS)
def bench_deserialize(measure, impl, name):
    ts = tensor_set(name)
    group = f"deserialize {name}"
    flat = client_updates(name, 1)[0]
    if impl in YARDSTICKS:
        _yardstick(measure, group, impl, flat)
        return
    params = ts.params
    sizes = [p.numel() for p in params]
    if impl.startswith("fastfl-") and impl[7:] in BACKENDS:
        fn = functools.partial(_with_backend, impl[7:], ops.unflatten_, flat, params)
    elif impl == "fastfl-api":
        fn = functools.partial(SerializationTool.deserialize_model, ts.model, flat)
    elif impl == "fedlab":
        fn = functools.partial(baselines.deserialize_model, ts.model, flat)
    else:

        def fn():
            pieces = [v.view(p.shape) for v, p in zip(flat.split(sizes), params, strict=True)]
            torch._foreach_copy_(params, pieces)

    original = [p.detach().clone() for p in params]

    def check(_):
        try:
            for p in params:
                p.data.fill_(float("nan"))
            fn()
            assert torch.equal(torch.cat([p.flatten() for p in params]), flat)
        finally:
            for p, o in zip(params, original, strict=True):
                p.data.copy_(o)

    measure(group, fn, check, 2 * ts.nbytes, n=ts.numel, tensors=len(params))

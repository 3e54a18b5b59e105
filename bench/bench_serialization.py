"""Serialization benchmarks: a model's parameters into one flat vector and back.

serialize: fastfl (kernel and SerializationTool, into a reused buffer and allocating) vs FedLab's
cat-then-cpu vs torch.cat(out=) vs parameters_to_vector; deserialize: fastfl vs FedLab's Python
loop vs torch._foreach_copy_. Each group also times a plain copy and read of the same bytes.
"""

from __future__ import annotations

import copy
import functools
import os

import baselines
import pytest
import torch
from bench_kernels import YARDSTICKS, _with_backend, _yardstick
from conftest import client_updates, fastfl_backends, tensor_set
from torch.nn.utils import parameters_to_vector

from fastfl import ops
from fastfl.utils import SerializationTool, _layout

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


PLAN_ROUNDS = 30


def _twin_without_plan(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose cached layout has no compiled plan: the checked Python path."""
    twin = copy.deepcopy(model)
    real = _layout._plan
    _layout._plan = lambda *args: None
    try:
        SerializationTool.serialize_model(twin)
    finally:
        _layout._plan = real
    return twin


@pytest.mark.parametrize("name", ["resnet18"])
def bench_plan_interleaved(benchmark, name):
    """deserialize/serialize through the layout's compiled plan, through the checked Python path,
    and a copy of the same bytes into a warm buffer, timed in turn (bench/headline.py's method)."""
    from headline import measure as interleave

    ts = tensor_set(name)
    model, twin = ts.model, _twin_without_plan(ts.model)
    SerializationTool.serialize_model(model)
    if _layout.cached_layout(model, False).plan is None:
        pytest.skip("no compiled plan on this backend")
    flat = client_updates(name, 1)[0]
    warm = torch.empty(ts.numel)
    cases = {
        "copy of the same bytes": lambda: warm.copy_(flat),
        "deserialize_model (compiled plan)": lambda: SerializationTool.deserialize_model(model, flat),
        "deserialize_model (checked Python path)": lambda: SerializationTool.deserialize_model(twin, flat),
        "serialize_model, fresh (compiled plan)": lambda: SerializationTool.serialize_model(model),
        "serialize_model, out= (compiled plan)": lambda: SerializationTool.serialize_model(model, out=warm),
        "serialize_model, out= (checked Python path)": lambda: SerializationTool.serialize_model(
            twin, out=warm
        ),
    }
    original = [p.detach().clone() for p in ts.params]
    lines: list[str] = []
    benchmark.group = f"serialization plan {name}"
    try:
        benchmark.pedantic(
            lambda: lines.extend(interleave(cases, "copy of the same bytes", {}, PLAN_ROUNDS)),
            rounds=1,
            iterations=1,
        )
        assert torch.equal(torch.cat([p.detach().reshape(-1) for p in model.parameters()]), flat)
    finally:
        for p, o in zip(ts.params, original, strict=True):
            p.data.copy_(o)
    benchmark.extra_info["table"] = lines
    print(f"\nserialization plan, {name}, {PLAN_ROUNDS} interleaved rounds, load {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))

"""The compiled flat plan of a layout: used when the model is unchanged, never when it changed.

Every test compares `SerializationTool` with a plain-torch reference of FedLab's semantics after
changing the model in one of the ways a cached layout could go stale.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fastfl import ops
from fastfl.utils import SerializationTool as ST
from fastfl.utils import serialization
from fastfl.utils._layout import cached_layout, layout_of

native = pytest.mark.skipif(ops.native_core() is None, reason="the plan needs the native backend")


def model_under_test() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2), nn.Linear(2, 2))
    model.frozen = nn.Parameter(torch.randn(6), requires_grad=False)  # resizable in place
    return model


def ordered(model: nn.Module, include_buffers: bool) -> list[torch.Tensor]:
    """FedLab's order: the parameters; with buffers, then floating and then other persistent buffers."""
    out = list(model.parameters())
    if include_buffers:
        keys = set(model.state_dict())
        bufs = [b for name, b in model.named_buffers() if name in keys]
        out += [b for b in bufs if b.is_floating_point()] + [b for b in bufs if not b.is_floating_point()]
    return out


def reference_vector(model: nn.Module, include_buffers: bool) -> torch.Tensor:
    tensors = ordered(model, include_buffers)
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    dtype = functools.reduce(torch.promote_types, floats) if floats else torch.float32
    return torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])


def check_both_directions(model: nn.Module, include_buffers: bool, seed: int) -> None:
    """serialize equals the reference; deserialize (copy, then add) writes the current tensors."""
    assert torch.equal(
        ST.serialize_model(model, include_buffers=include_buffers), reference_vector(model, include_buffers)
    )
    out = torch.empty_like(reference_vector(model, include_buffers))
    assert torch.equal(ST.serialize_model(model, include_buffers=include_buffers, out=out), out)
    assert torch.equal(out, reference_vector(model, include_buffers))
    gen = torch.Generator().manual_seed(seed)
    vec = torch.randint(-4, 5, out.shape, generator=gen).to(out.dtype)
    ST.deserialize_model(model, vec, include_buffers=include_buffers)
    tensors = ordered(model, include_buffers)
    off = 0
    for t in tensors:
        assert torch.equal(t.detach(), vec[off : off + t.numel()].view(t.shape).to(t.dtype))
        off += t.numel()
    before = [t.detach().clone() for t in tensors]
    ST.deserialize_model(model, vec, mode="add", include_buffers=include_buffers)
    off = 0
    for t, old in zip(tensors, before, strict=True):
        piece = vec[off : off + t.numel()].view(t.shape)
        want = old + piece.to(t.dtype) if t.is_floating_point() else old  # counts are not added to
        assert torch.equal(t.detach(), want)
        off += t.numel()


def _param(model: nn.Module, i: int) -> nn.Parameter:
    params = list(model.parameters())
    return params[i % len(params)]


def replace_data(model: nn.Module, i: int) -> None:
    p = _param(model, i)
    p.data = torch.randn_like(p)


def replace_parameter(model: nn.Module, i: int) -> None:
    model[0].weight = nn.Parameter(torch.randn(4, 3))


def reshape_same_numel(model: nn.Module, i: int) -> None:
    p = _param(model, i)
    p.data = p.data.reshape(-1)  # same memory, dtype and element count; a new shape


def to_double(model: nn.Module, i: int) -> None:
    p = _param(model, i)
    p.data = p.data.double()


def to_bfloat16(model: nn.Module, i: int) -> None:
    p = _param(model, i)
    p.data = p.data.to(torch.bfloat16)


def non_contiguous(model: nn.Module, i: int) -> None:
    p = model[0].weight
    p.data = torch.randn(p.shape[::-1]).t()


def shrink_in_place(model: nn.Module, i: int) -> None:
    if model.frozen.numel() > 1:
        model.frozen.resize_(model.frozen.numel() - 1)  # same address, fewer elements


def grow_in_place(model: nn.Module, i: int) -> None:
    model.frozen.resize_(model.frozen.numel() + 1000)  # new memory
    with torch.no_grad():
        model.frozen.normal_()


def grow_shared_storage(model: nn.Module, i: int) -> None:
    p = _param(model, i)
    p.data.resize_(p.numel() + 4096)  # reallocates the storage under p without changing p's shape


def append_module(model: nn.Module, i: int) -> None:
    model.append(nn.Linear(2, 1 + i % 3))


def delete_module(model: nn.Module, i: int) -> None:
    if len(model) > 2:  # the first two stay: the other changes name them
        del model[len(model) - 1]


def add_in_place(model: nn.Module, i: int) -> None:
    with torch.no_grad():
        _param(model, i).add_(1.0)


def replace_buffer(model: nn.Module, i: int) -> None:
    model[1].running_mean = torch.randn(4)


def flip_persistence(model: nn.Module, i: int) -> None:
    bn = model[1]
    if "running_var" in bn._non_persistent_buffers_set:
        bn._non_persistent_buffers_set.discard("running_var")
    else:
        bn._non_persistent_buffers_set.add("running_var")


def tie_weights(model: nn.Module, i: int) -> None:
    model.tied = model[0]  # the same module twice: its tensors are listed once


CHANGES: list[Callable[[nn.Module, int], None]] = [
    replace_data,
    replace_parameter,
    reshape_same_numel,
    to_double,
    to_bfloat16,
    non_contiguous,
    shrink_in_place,
    grow_in_place,
    grow_shared_storage,
    append_module,
    delete_module,
    add_in_place,
    replace_buffer,
    flip_persistence,
    tie_weights,
]


@native
def test_a_contiguous_cpu_model_gets_a_plan_and_uses_it(monkeypatch):
    model = model_under_test()
    ST.serialize_model(model)
    layout = cached_layout(model, False)
    assert layout is not None and layout.plan is not None and len(layout.plan) == len(layout.sources)
    used = []
    real = serialization._plan_unflatten
    monkeypatch.setattr(serialization, "_plan_unflatten", lambda *a: used.append(real(*a)) or used[-1])
    ST.deserialize_model(model, torch.zeros(layout.numel))
    assert used == [True]
    assert all(not p.detach().any() for p in model.parameters())


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("include_buffers", [False, True])
def test_each_change_is_rechecked(change, include_buffers):
    model = model_under_test()
    check_both_directions(model, include_buffers, 0)  # builds and uses the layout (and its plan)
    change(model, 1)
    check_both_directions(model, include_buffers, 1)
    check_both_directions(model, include_buffers, 2)  # the rebuilt layout, from the cache


@native
def test_a_stale_plan_writes_nothing():
    model = model_under_test()
    ST.serialize_model(model)
    stale = cached_layout(model, False)
    old = model[0].weight.detach()
    model[0].weight.data = torch.ones(4, 3)
    flat = torch.zeros(stale.numel)
    assert stale.plan.unflatten(model, flat, 5, 0, 1) is False  # code 5: float32
    assert stale.plan.flatten(model, flat, 5, 1) is False
    assert not stale.plan.valid(model)
    assert torch.equal(model[0].weight.detach(), torch.ones(4, 3))
    assert old.data_ptr() != model[0].weight.data_ptr()
    assert layout_of(model) is not stale and layout_of(model).plan.valid(model)


@native
def test_other_backends_do_not_use_the_plan(monkeypatch):
    model = model_under_test()
    ST.serialize_model(model)
    calls = []
    real = ops.unflatten_
    monkeypatch.setattr(ops, "unflatten_", lambda *a, **k: calls.append(ops.backend()) or real(*a, **k))
    with ops.using("torch"):
        ST.deserialize_model(model, torch.ones(layout_of(model).numel), mode="add")
    assert calls == ["torch"]  # the torch backend's kernel did the work, not the compiled plan


def test_an_integer_parameter_before_floating_ones_is_handled_as_before():
    """add/sub then take the checked path, which the plan declines; copy still uses the plan."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].count = nn.Parameter(torch.arange(3), requires_grad=False)
    n = ST.serialize_model(model).numel()
    with ops.using("torch"):
        want = copy.deepcopy(model)
        ST.deserialize_model(want, torch.full((n,), 2.0), mode="add")
    ST.deserialize_model(model, torch.full((n,), 2.0), mode="add")
    for got, ref in zip(model.parameters(), want.parameters(), strict=True):
        assert torch.equal(got, ref)
    ST.deserialize_model(model, torch.arange(float(n)))
    assert torch.equal(ST.serialize_model(model), torch.arange(float(n)))


def test_errors_are_unchanged_with_a_cached_plan():
    model = model_under_test()
    n = ST.serialize_model(model).numel()
    with pytest.raises(ValueError, match=f"{n + 1} elements .* hold {n}"):
        ST.deserialize_model(model, torch.zeros(n + 1))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        ST.deserialize_model(model, [0.0] * n)
    with pytest.raises(ValueError, match="mode"):
        ST.deserialize_model(model, torch.zeros(n), mode="mul")
    with pytest.raises(ValueError, match="contiguous 1-D"):
        ST.serialize_model(model, out=torch.zeros(n + 1))


def test_odd_inputs_take_the_checked_path():
    model = model_under_test()
    n = ST.serialize_model(model).numel()
    flat = torch.arange(2 * n, dtype=torch.float64)[::2]  # non-contiguous, float64
    ST.deserialize_model(model, flat)
    assert torch.equal(ST.serialize_model(model), flat.float())
    ST.deserialize_model(model, flat.float().view(1, n))  # 2-D
    assert torch.equal(ST.serialize_model(model), flat.float())
    ST.deserialize_model(model, torch.arange(n, dtype=torch.int32))  # integer vector, cast
    assert torch.equal(ST.serialize_model(model), torch.arange(n, dtype=torch.float32))


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(CHANGES), st.integers(0, 7)), min_size=1, max_size=8),
    include_buffers=st.booleans(),
)
def test_any_sequence_of_changes_is_never_served_stale(steps, include_buffers):
    model = model_under_test()
    check_both_directions(model, include_buffers, 0)
    for k, (change, i) in enumerate(steps):
        change(model, i)
        check_both_directions(model, include_buffers, k + 1)


def test_threads_using_plans_at_once_get_their_own_results():
    models = [nn.Sequential(nn.Linear(300, 400), nn.Linear(400, 10)) for _ in range(4)]  # GIL released

    def work(k: int) -> bool:
        model = models[k]
        ok = True
        for r in range(20):
            vec = torch.full((ST.serialize_model(model).numel(),), float(k * 100 + r))
            ST.deserialize_model(model, vec)
            ok &= torch.equal(ST.serialize_model(model), vec)
        return ok

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4)))

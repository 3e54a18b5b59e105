from __future__ import annotations

import gc
import weakref

import torch
from torch import nn

from fastfl.utils import SerializationTool as ST
from fastfl.utils._layout import cached_layouts, layout_of


def test_layout_is_cached_per_model_and_option():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    first = layout_of(model)
    assert layout_of(model) is first
    with_buffers = layout_of(model, include_buffers=True)
    assert with_buffers is not first and layout_of(model, include_buffers=True) is with_buffers
    assert cached_layouts(model) == 2
    assert first.names == ("0.weight", "0.bias", "1.weight", "1.bias")
    assert with_buffers.names[-3:] == ("1.running_mean", "1.running_var", "1.num_batches_tracked")


def test_replacing_param_data_invalidates():
    model = nn.Linear(3, 2)
    ST.serialize_model(model)
    old = layout_of(model)
    model.weight.data = torch.full((2, 3), 5.0)
    flat = ST.serialize_model(model)
    assert layout_of(model) is not old
    assert torch.equal(flat[:6], torch.full((6,), 5.0))
    ST.deserialize_model(model, torch.zeros(8))
    assert torch.equal(model.weight.detach(), torch.zeros(2, 3))  # written into the new storage


def test_replacing_param_shape_dtype_and_module_invalidates():
    model = nn.Sequential(nn.Linear(3, 2))
    assert ST.serialize_model(model).numel() == 8
    model[0].weight = nn.Parameter(torch.ones(2, 3).t().contiguous())  # shape (3, 2), same numel
    assert layout_of(model).tensors[0].shape == (3, 2)
    model.append(nn.Linear(2, 1))
    assert ST.serialize_model(model).numel() == 8 + 3
    model.double()
    assert ST.serialize_model(model).dtype == torch.float64


def test_in_place_updates_keep_the_cache():
    model = nn.Linear(3, 2)
    layout = layout_of(model)
    with torch.no_grad():
        model.weight.add_(1.0)
    assert layout_of(model) is layout
    assert torch.equal(ST.serialize_model(model)[:6], model.weight.detach().reshape(-1))


def test_optimizer_steps_keep_the_cache_and_are_seen():
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    layout = layout_of(model)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    assert layout_of(model) is layout
    assert torch.equal(
        ST.serialize_model(model), torch.cat([model.weight.detach().reshape(-1), model.bias.detach()])
    )


def test_cache_does_not_keep_models_alive():
    model = nn.Linear(3, 2)
    ST.serialize_model(model, include_buffers=True)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_order_follows_parameters_and_buffers_with_shared_modules():
    shared = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    model = nn.Sequential(nn.Linear(2, 2), shared, nn.BatchNorm1d(2), shared)
    model.register_buffer("step", torch.zeros((), dtype=torch.int32))
    layout = layout_of(model, include_buffers=True)
    buffers = list(model.buffers())
    expected = (
        list(model.parameters())
        + [b for b in buffers if b.is_floating_point()]
        + [b for b in buffers if not b.is_floating_point()]
    )
    assert len(layout.sources) == len(expected)
    assert all(a is b for a, b in zip(layout.sources, expected, strict=True))
    assert set(layout.names) <= set(model.state_dict())


def test_deleting_a_module_invalidates():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    assert ST.serialize_model(model).numel() == 9 + 4
    del model[1]
    assert ST.serialize_model(model).numel() == 9

"""SubsetSerialTrainer's fused batched step (Linear/ReLU stacks) equals the autograd paths."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import TensorDataset

from fastfl.core.client import SubsetSerialTrainer
from fastfl.core.client._fused import FusedSGD, linear_plan
from fastfl.core.client._vectorized import VectorizedSGD
from fastfl.core.model_maintainer import read_params
from tests.core.client.test_vectorized import ARGS, IDS, _data, _model, _slices


def _mlp(features: int, hidden: list[int], classes: int, bias: list[bool], flatten: bool, seed: int):
    torch.manual_seed(seed)
    dims = [features, *hidden, classes]
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    for i in range(len(dims) - 1):
        layers += [nn.Linear(dims[i], dims[i + 1], bias=bias[i]), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _train(model, data, slices, ids, batch_clients, args, rounds=1, **kw):
    trainer = SubsetSerialTrainer(
        copy.deepcopy(model), data, slices, args=args, seed=7, batch_clients=batch_clients, **kw
    )
    flat = read_params(model)
    for _ in range(rounds):
        rows = [r.clone() for r in trainer.local_process(ids, [flat])]
    return trainer, rows


def _close(rows_a, rows_b):
    for a, b in zip(rows_a, rows_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    bias=st.lists(st.booleans(), min_size=5, max_size=5),
    sizes=st.lists(st.integers(0, 13), min_size=1, max_size=5),
    batch=st.integers(1, 6),
    epochs=st.integers(1, 2),
    flatten=st.booleans(),
    chunk=st.sampled_from([1, 2, 256]),
    seed=st.integers(0, 2**16),
)
def test_fused_matches_serial_and_vmapped(hidden, bias, sizes, batch, epochs, flatten, chunk, seed):
    g = torch.Generator().manual_seed(seed)
    classes, n = 3, sum(sizes)
    shape = (n, 2, 3) if flatten else (n, 6)  # Flatten turns [n, 2, 3] into [n, 6]
    data = TensorDataset(torch.randn(*shape, generator=g), torch.randint(0, classes, (n,), generator=g))
    model = _mlp(6, hidden, classes, bias, flatten, seed)
    slices = _slices(sizes)
    ids = list(range(len(sizes)))[::-1]
    args = {"epochs": epochs, "batch_size": batch, "lr": 0.1}
    fused, rows = _train(model, data, slices, ids, chunk, args)
    assert type(fused._vectorized) is FusedSGD  # it really took the fused path
    serial, rows_serial = _train(model, data, slices, ids, None, args)
    vmapped, rows_vmapped = _train(model, data, slices, ids, chunk, args, fused=False)
    assert type(vmapped._vectorized) is VectorizedSGD
    _close(rows, rows_serial)
    _close(rows, rows_vmapped)
    assert fused.sample_counts == serial.sample_counts
    torch.testing.assert_close(
        torch.tensor(fused.losses), torch.tensor(serial.losses), rtol=1e-5, atol=1e-6, equal_nan=True
    )


def test_relu_on_the_logits_and_later_rounds_match():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU())
    _, rows = _train(model, _data(), _slices(), IDS, 2, ARGS, rounds=3)
    _, rows_serial = _train(model, _data(), _slices(), IDS, None, ARGS, rounds=3)
    _close(rows, rows_serial)


@pytest.mark.parametrize("bias", [True, False])
def test_bare_linear_matches(bias):
    torch.manual_seed(0)
    model = nn.Linear(5, 3, bias=bias)
    fused, rows = _train(model, _data(), _slices(), IDS, 2, ARGS, rounds=2)
    assert type(fused._vectorized) is FusedSGD
    _, rows_serial = _train(model, _data(), _slices(), IDS, None, ARGS, rounds=2)
    _close(rows, rows_serial)


def test_auto_uses_the_fused_step_and_none_stays_serial():
    auto, rows = _train(_model(), _data(), _slices(), IDS, "auto", ARGS, rounds=5)
    assert type(auto._vectorized) is FusedSGD
    serial, rows_serial = _train(_model(), _data(), _slices(), IDS, None, ARGS, rounds=5)
    assert serial._vectorized is None  # batch_clients=None never builds a batched step
    _close(rows, rows_serial)
    unfused, _ = _train(_model(), _data(), _slices(), IDS, "auto", ARGS, rounds=4, fused=False)
    assert type(unfused._vectorized) is VectorizedSGD


@pytest.mark.parametrize("batch_clients", [1, 3])
def test_torch_func_path_still_matches_serial(batch_clients):
    """fused=False keeps the torch.func path that the tests in test_vectorized.py covered before."""
    _, rows = _train(_model(), _data(), _slices(), IDS, batch_clients, ARGS, fused=False)
    _, rows_serial = _train(_model(), _data(), _slices(), IDS, None, ARGS)
    _close(rows, rows_serial)


class _MyLinear(nn.Linear):
    pass


def _hooked():
    model = _model()
    model[0].register_forward_hook(lambda m, i, o: o * 2)
    return model


def _shared():
    lin = nn.Linear(5, 5)
    return nn.Sequential(lin, nn.ReLU(), lin, nn.ReLU(), nn.Linear(5, 3))


def _frozen():
    model = _model()
    model[0].bias.requires_grad_(False)
    return model


UNSUPPORTED_MODELS = {
    "tanh": lambda: nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)),
    "subclass": lambda: nn.Sequential(_MyLinear(5, 4), nn.ReLU(), nn.Linear(4, 3)),
    "hook": _hooked,
    "shared": _shared,
    "frozen": _frozen,
    "double-relu": lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 3)),
    "relu-first": lambda: nn.Sequential(nn.ReLU(), nn.Linear(5, 3)),
    "flatten-later": lambda: nn.Sequential(nn.Linear(5, 3), nn.Flatten()),
    "float64": lambda: _model().double(),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED_MODELS))
def test_unsupported_models_are_not_fused(name):
    assert linear_plan(UNSUPPORTED_MODELS[name]()) is None


@pytest.mark.parametrize("name", ["tanh", "subclass", "hook", "shared", "frozen"])
def test_unsupported_models_train_vmapped_and_match(name):
    model = UNSUPPORTED_MODELS[name]()
    trainer, rows = _train(model, _data(), _slices(), IDS, 3, ARGS)
    assert type(trainer._vectorized) is VectorizedSGD
    if name != "hook":  # torch.func and autograd run hooks differently; only the path is checked
        _, rows_serial = _train(model, _data(), _slices(), IDS, None, ARGS)
        _close(rows, rows_serial)


@pytest.mark.parametrize(
    "criterion",
    [
        nn.CrossEntropyLoss(label_smoothing=0.1),
        nn.CrossEntropyLoss(weight=torch.ones(3)),
        nn.CrossEntropyLoss(reduction="sum"),
        nn.CrossEntropyLoss(ignore_index=1),
        nn.NLLLoss(),
    ],
)
def test_other_losses_are_not_fused(criterion):
    trainer = SubsetSerialTrainer(_model(), _data(), _slices(), args=ARGS, batch_clients=3)
    trainer._criterion = criterion
    trainer.local_process([0, 1], [read_params(_model())])
    assert type(trainer._vectorized) is VectorizedSGD


@pytest.mark.parametrize(
    "data",
    [
        TensorDataset(torch.randn(80, 5).double(), torch.randint(0, 3, (80,))),  # not fp32
        TensorDataset(torch.randn(80, 5), torch.randint(0, 3, (80,)).int()),  # not int64 labels
        TensorDataset(torch.randn(80, 5), torch.full((80,), 7)),  # labels beyond the classes
        TensorDataset(torch.randn(80, 5), torch.full((80,), -100)),  # cross-entropy's ignore_index
        TensorDataset(torch.randn(80, 5, 1), torch.randint(0, 3, (80,))),  # 3-D, no Flatten
        TensorDataset(torch.randn(80, 6), torch.randint(0, 3, (80,))),  # 6 features for Linear(5, .)
    ],
    ids=["float64-inputs", "int32-labels", "label-7", "label-ignored", "3-d", "wrong-width"],
)
def test_data_the_fused_step_cannot_take_is_not_fused(data):
    model = _model()
    assert FusedSGD(model, linear_plan(model)).supports(*data.tensors) is not None


def test_bad_fused_flag():
    with pytest.raises(TypeError, match="fused"):
        SubsetSerialTrainer(_model(), _data(), _slices(), fused="yes")


def test_flatten_of_strided_images_matches():
    """Images in a non-contiguous layout: the fused step gathers rows, then flattens them."""
    g = torch.Generator().manual_seed(3)
    images = torch.randn(80, 3, 2, 2, generator=g).permute(0, 2, 3, 1)  # [n, 2, 2, 3], strided
    data = TensorDataset(images, torch.randint(0, 3, (80,), generator=g))
    model = _mlp(12, [4], 3, [True, False], True, 0)
    fused, rows = _train(model, data, _slices(), IDS, 3, ARGS)
    assert type(fused._vectorized) is FusedSGD
    _, rows_serial = _train(model, data, _slices(), IDS, None, ARGS)
    _close(rows, rows_serial)

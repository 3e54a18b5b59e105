"""SubsetSerialTrainer(batch_clients=N): vmapped multi-client training equals one client at a time."""

from __future__ import annotations

import copy
import logging
import random

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from fastfl.core.client import SubsetSerialTrainer
from fastfl.core.model_maintainer import read_params

# unequal sizes: groups of 12 (3 clients), 7 (2 clients), 10 (1), 0 (1); batch 5 leaves partial batches
SIZES = [12, 7, 12, 10, 12, 7, 0]
ARGS = {"epochs": 3, "batch_size": 5, "lr": 0.1}


def _data(n=80, features=5):
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, features, generator=g), torch.randint(0, 3, (n,), generator=g))


def _slices(sizes=SIZES):
    out, start = [], 0
    for n in sizes:
        out.append(list(range(start, start + n)))
        start += n
    return out


def _model(*middle: nn.Module):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), *middle, nn.ReLU(), nn.Linear(4, 3))


def _run(model, batch_clients, ids, data=None, args=ARGS, seed=3, **kw):
    trainer = SubsetSerialTrainer(
        copy.deepcopy(model),
        data or _data(),
        _slices(),
        args=args,
        seed=seed,
        batch_clients=batch_clients,
        **kw,
    )
    flat = read_params(model)
    rows = [r.clone() for r in trainer.local_process(ids, [flat])]
    return trainer, rows, flat


IDS = [6, 4, 0, 1, 2, 3, 5]


@pytest.mark.parametrize("batch_clients", [1, 2, 3, 256])
def test_matches_sequential_across_groups_and_chunks(batch_clients):
    model = _model()
    seq, rows_seq, flat = _run(model, None, IDS)
    vec, rows_vec, _ = _run(model, batch_clients, IDS)
    assert vec.sample_counts == seq.sample_counts == [SIZES[i] for i in IDS]
    for a, b in zip(rows_seq, rows_vec, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        torch.tensor(vec.losses[1:]), torch.tensor(seq.losses[1:]), rtol=1e-5, atol=1e-6
    )
    assert torch.isnan(torch.tensor(vec.losses[0]))  # client 6 has no samples: no steps
    assert torch.equal(rows_vec[0], flat)  # ...and keeps the global parameters
    assert not torch.allclose(rows_vec[1], flat)  # the others did train


def test_second_round_keeps_matching():
    """Per-client generators advance per round the same way on both paths."""
    model = _model()
    data = _data()
    seq = SubsetSerialTrainer(copy.deepcopy(model), data, _slices(), args=ARGS, seed=5)
    vec = SubsetSerialTrainer(copy.deepcopy(model), data, _slices(), args=ARGS, seed=5, batch_clients=2)
    flat = read_params(model)
    for ids in ([0, 2, 4], [4, 2, 0, 1]):
        a = [r.clone() for r in seq.local_process(ids, [flat])]
        b = [r.clone() for r in vec.local_process(ids, [flat])]
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6)


def test_global_generator_orders_match_when_unseeded():
    model = _model()
    random.seed(11)
    _, rows_seq, _ = _run(model, None, [0, 1, 2], seed=None)
    random.seed(11)
    _, rows_vec, _ = _run(model, 2, [0, 1, 2], seed=None)
    for a, b in zip(rows_seq, rows_vec, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_aggregate_matches_sequential():
    model = _model()
    seq, rows_seq, _ = _run(model, None, IDS, aggregate=True)
    vec, rows_vec, _ = _run(model, 2, IDS, aggregate=True)
    assert len(rows_vec) == 1
    torch.testing.assert_close(rows_vec[0], rows_seq[0], rtol=1e-5, atol=1e-6)
    assert (
        vec.uplink_meta == seq.uplink_meta == {"num_samples": sum(vec.sample_counts), "num_clients": len(IDS)}
    )


def test_frozen_parameters_stay_and_zero_epochs_return_global():
    model = _model()
    model[0].weight.requires_grad_(False)
    _, rows_seq, flat = _run(model, None, [0, 1])
    _, rows_vec, _ = _run(model, 2, [0, 1])
    n = model[0].weight.numel()
    for a, b in zip(rows_seq, rows_vec, strict=True):
        assert torch.equal(b[:n], flat[:n])
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    _, rows, flat = _run(_model(), 4, [0, 1, 3], args={**ARGS, "epochs": 0})
    assert all(torch.equal(r, flat) for r in rows)


@pytest.mark.parametrize("layer", [nn.BatchNorm1d(4), nn.Dropout(0.5)], ids=["batchnorm", "dropout"])
def test_non_vmappable_model_falls_back_with_log(layer, caplog):
    model = _model(layer)
    torch.manual_seed(2)
    _, rows_seq, _ = _run(model, None, [0, 1, 2])
    torch.manual_seed(2)
    with caplog.at_level(logging.WARNING, logger="fastfl.client"):
        vec, rows_vec, _ = _run(model, 4, [0, 1, 2])
    assert "one client at a time" in caplog.text and "vmap" in caplog.text
    for a, b in zip(rows_seq, rows_vec, strict=True):
        assert torch.equal(a, b)  # the same sequential path, bit for bit
    assert vec._vectorized is None


class _ListDataset(Dataset):
    def __init__(self, data: TensorDataset):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


def test_non_tensor_dataset_falls_back(caplog):
    model = _model()
    _, rows_seq, _ = _run(model, None, [0, 1], data=_ListDataset(_data()))
    with caplog.at_level(logging.WARNING, logger="fastfl.client"):
        vec, rows_vec, flat = _run(model, 4, [0, 1], data=_ListDataset(_data()))
        rows_vec = [r.clone() for r in rows_vec]
        vec.local_process([0, 1], [flat])
    assert "not a TensorDataset" in caplog.text
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # warned once
    for a, b in zip(rows_seq, rows_vec, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_bad_batch_clients(value, error):
    with pytest.raises(error, match="batch_clients"):
        SubsetSerialTrainer(_model(), _data(), _slices(), batch_clients=value)


def test_out_of_range_id():
    trainer = SubsetSerialTrainer(_model(), _data(), _slices(), batch_clients=4)
    with pytest.raises(ValueError, match="out of range"):
        trainer.local_process([len(SIZES)], [read_params(_model())])

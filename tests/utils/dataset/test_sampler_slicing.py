from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fastfl.utils.dataset import (
    DictFileSampler,
    PartitionError,
    PartitionTypeError,
    RawPartitionSampler,
    SubsetSampler,
    noniid_slicing,
    random_slicing,
)

from ._helpers import assert_disjoint, assert_exact_cover


def test_subset_sampler_copies_and_reshuffles_each_epoch():
    indices = list(range(100))
    sampler = SubsetSampler(indices, shuffle=True, seed=0)
    assert indices == list(range(100)), "the caller's list must stay as it was (B16)"
    epochs = [list(sampler) for _ in range(3)]
    assert all(sorted(e) == indices for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    again = SubsetSampler(indices, shuffle=True, seed=0)
    assert list(again) == epochs[0]
    assert len(sampler) == 100


def test_subset_sampler_plain_order_and_loader():
    sampler = SubsetSampler(np.array([5, 3, 9]))
    assert list(sampler) == [5, 3, 9] and all(isinstance(i, int) for i in sampler)
    data = TensorDataset(torch.arange(10))
    batch = next(iter(DataLoader(data, sampler=sampler, batch_size=3)))
    assert batch[0].tolist() == [5, 3, 9]
    with pytest.raises(PartitionTypeError):
        SubsetSampler([0.5, 1.5])


def test_raw_partition_sampler_blocks():
    data = list(range(10))
    blocks = [list(RawPartitionSampler(data, rank, num_replicas=3)) for rank in (1, 2, 3)]
    assert blocks == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(RawPartitionSampler(data, 1, num_replicas=3)) == 3
    with pytest.raises(PartitionError, match=r"1\.\.3"):
        RawPartitionSampler(data, 0, num_replicas=3)
    with pytest.raises(PartitionTypeError, match="client_id should be int"):
        RawPartitionSampler(data, "1", num_replicas=3)
    with pytest.raises(PartitionError, match="num_replicas"):
        RawPartitionSampler(data, 1)  # no process group


def test_dict_file_sampler(tmp_path):
    path = tmp_path / "parts.pkl"
    with open(path, "wb") as f:
        pickle.dump({0: [4, 2], 1: np.array([7])}, f)
    assert list(DictFileSampler(path, 0)) == [4, 2]
    assert len(DictFileSampler(path, 1)) == 1
    with pytest.raises(PartitionError, match="no client 5"):
        DictFileSampler(path, 5)


def test_random_slicing_linear_and_fedlab_form():
    data = list(range(1003))
    d = random_slicing(data, 10, rng=0)
    assert all(isinstance(v, list) and len(v) == 100 for v in d.values())
    assert_disjoint(d, 1003)
    assert d == random_slicing(data, 10, rng=0) and d != random_slicing(data, 10, rng=1)


def test_noniid_slicing():
    ds = SimpleNamespace(targets=np.repeat(np.arange(10), 100))
    d = noniid_slicing(ds, 10, 20, rng=0)
    assert_exact_cover(d, 1000)
    assert max(np.unique(ds.targets[v]).size for v in d.values()) <= 2
    with pytest.raises(PartitionError, match="targets"):
        noniid_slicing(list(range(10)), 2, 4)

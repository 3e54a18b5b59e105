"""Property comparisons with the real FedLab 1.2.1 (not bitwise: fastfl uses its own Generator)."""

from __future__ import annotations

import numpy as np
import pytest

from fastfl.utils import dataset as D

from ._helpers import assert_exact_cover, labels, mean_entropy

pytest.importorskip("fedlab.utils.dataset.partition")


def fedlab_functional():
    import fedlab.utils.dataset.functional as fedlab_f

    return fedlab_f


def test_compare_with_fedlab_shards_properties():
    from fedlab.utils.dataset.partition import CIFAR10Partitioner as FedLabCIFAR10

    y = np.repeat(np.arange(10), 500)
    theirs = FedLabCIFAR10(y, 50, balance=None, partition="shards", num_shards=100, seed=0)
    ours = D.CIFAR10Partitioner(y, 50, balance=None, partition="shards", num_shards=100, seed=0)
    for p in (theirs, ours):
        assert sorted(len(p[c]) for c in range(50)) == [100] * 50
        assert max(np.unique(y[p[c]]).size for c in range(50)) <= 2
    assert_exact_cover(ours.client_dict, y.size)


def test_compare_with_fedlab_b6():
    # Ample samples (no class runs out), so FedLab's per-sample loop stays short.
    y = labels(3000, 10, seed=4)
    nums = np.full(10, 100)
    np.random.seed(0)
    theirs = fedlab_functional().client_inner_dirichlet_partition(y, 10, 10, 0.3, nums.copy(), verbose=False)
    ours = D.functional.client_inner_dirichlet_partition(y, 10, 10, 0.3, nums, verbose=False, rng=0)
    assert mean_entropy(y, theirs, 10) > 0.9 * np.log(10)  # FedLab's B6: nearly IID despite alpha 0.3
    assert mean_entropy(y, ours, 10) < 0.8 * np.log(10)
    assert [len(theirs[c]) for c in range(10)] == [len(ours[c]) for c in range(10)] == nums.tolist()


def test_compare_with_fedlab_hetero_dir_entropy():
    y = labels(6000, 10, seed=5)
    np.random.seed(0)
    theirs = mean_entropy(y, fedlab_functional().hetero_dir_partition(y, 20, 10, 0.3), 10)
    ours = mean_entropy(y, D.functional.hetero_dir_partition(y, 20, 10, 0.3, rng=0), 10)
    assert abs(theirs - ours) < 0.35 * np.log(10)  # the same scheme: similar skew (not bitwise)

"""Partitioning benchmarks: fastfl's vectorised schemes against FedLab 1.2.1's own functions.

Sizes: "large" = 1e6 labels, 100 classes, 1000 clients (marked slow); "small" = 2e4 labels,
100 classes, 100 clients (the smoke run). FedLab's two per-sample/per-client Python loops
(client_inner_dirichlet_partition and random_slicing) take minutes at the large size, so in the
large case they run at 1/20 scale (5e4 labels, same 1000 clients and 100 classes) and the
README reports that scale next to the number. Every result is checked after timing.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastfl.utils.dataset import functional as F
from fastfl.utils.dataset import random_slicing

fedlab_f = pytest.importorskip("fedlab.utils.dataset.functional")
fedlab_slicing = pytest.importorskip("fedlab.utils.dataset.slicing")

K = 100
SIZES = {"small": (20_000, 100), "large": (1_000_000, 1000)}
SIZE_PARAMS = [pytest.param("small"), pytest.param("large", marks=pytest.mark.slow)]


def _labels(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, K, n)


class _Sized:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def _fastfl(scheme: str, y: np.ndarray, j: int):
    n = y.shape[0]
    if scheme == "homo":
        return F.homo_partition(F.balance_split(j, n), n, rng=0)
    if scheme == "lognormal_iid":
        return F.homo_partition(F.lognormal_unbalance_split(j, n, 0.3, rng=0), n, rng=0)
    if scheme == "shards":
        return F.shards_partition(y, j, 2 * j, rng=0)
    if scheme == "hetero_dir":
        return F.hetero_dir_partition(y, j, K, 0.5, min_require_size=10, rng=0)
    if scheme == "inner_dir":
        return F.client_inner_dirichlet_partition(y, j, K, 1.0, F.balance_split(j, n), verbose=False, rng=0)
    if scheme == "label_skew":
        return F.label_skew_quantity_based_partition(y, j, K, 2, rng=0)
    if scheme == "exdir":
        return F.extended_dirichlet_partition(y, j, K, 2, 0.5, rng=0)
    if scheme == "random_slicing":
        return random_slicing(_Sized(n), j, rng=0)
    raise ValueError(scheme)


def _fedlab(scheme: str, y: np.ndarray, j: int):
    n = y.shape[0]
    np.random.seed(0)
    if scheme == "homo":
        return fedlab_f.homo_partition(fedlab_f.balance_split(j, n), n)
    if scheme == "lognormal_iid":
        return fedlab_f.homo_partition(fedlab_f.lognormal_unbalance_split(j, n, 0.3), n)
    if scheme == "shards":
        return fedlab_f.shards_partition(y, j, 2 * j)
    if scheme == "hetero_dir":
        return fedlab_f.hetero_dir_partition(y, j, K, 0.5, min_require_size=10)
    if scheme == "inner_dir":
        return fedlab_f.client_inner_dirichlet_partition(
            y, j, K, 1.0, fedlab_f.balance_split(j, n), verbose=False
        )
    if scheme == "label_skew":
        return fedlab_f.label_skew_quantity_based_partition(y, j, K, 2)
    if scheme == "random_slicing":
        return fedlab_slicing.random_slicing(_Sized(n), j)
    raise ValueError(scheme)


SLOW_IN_FEDLAB = {"inner_dir", "random_slicing"}
SCHEMES = [
    "homo",
    "lognormal_iid",
    "shards",
    "hetero_dir",
    "inner_dir",
    "label_skew",
    "exdir",
    "random_slicing",
]


def _check(result: dict, n: int, j: int, scheme: str) -> int:
    assert sorted(result) == list(range(j))
    flat = np.concatenate([np.asarray(v, dtype=np.int64) for v in result.values()])
    assert np.unique(flat).size == flat.size and flat.min() >= 0 and flat.max() < n
    if scheme in ("hetero_dir", "lognormal_iid", "label_skew", "exdir", "shards"):
        assert flat.size == n
    if scheme in ("homo", "inner_dir", "random_slicing"):
        assert all(len(result[c]) == n // j for c in range(j))
    return int(flat.nbytes)


@pytest.mark.parametrize("size", SIZE_PARAMS)
@pytest.mark.parametrize("impl", ["fastfl", "fedlab"])
@pytest.mark.parametrize("scheme", SCHEMES)
def bench_partition(benchmark, scheme, impl, size):
    n, j = SIZES[size]
    if impl == "fedlab" and scheme == "exdir":
        pytest.skip("FedLab 1.2.1 has no extended-Dirichlet scheme (issue #337)")
    if impl == "fedlab" and scheme in SLOW_IN_FEDLAB and size == "large":
        n = n // 20  # FedLab's per-sample / O(J·N) loop: 1/20 scale (see the module docstring)
    y = _labels(n)
    benchmark.group = f"partition-{scheme}-{size}"
    run = _fastfl if impl == "fastfl" else _fedlab
    slow_baseline = impl == "fedlab" and (size == "large" or scheme in SLOW_IN_FEDLAB)
    if slow_baseline:
        result = benchmark.pedantic(run, args=(scheme, y, j), rounds=1, iterations=1)
    else:
        result = benchmark(run, scheme, y, j)
    out_bytes = _check(result, n, j, scheme)
    benchmark.extra_info.update(labels=n, clients=j, classes=K, bytes=int(y.nbytes) + out_bytes)


@pytest.mark.parametrize("size", SIZE_PARAMS)
@pytest.mark.parametrize("floor", ["copy", "permutation", "torch_randperm_split"])
def bench_partition_floor(benchmark, floor, size):
    """The least work any partition does: copy the labels, draw one permutation (numpy, torch)."""
    import torch

    n, j = SIZES[size]
    y = _labels(n)
    benchmark.group = f"partition-floor-{size}"
    if floor == "copy":
        out = benchmark(np.copy, y)
        assert np.array_equal(out, y)
    elif floor == "permutation":
        out = benchmark(lambda: np.random.default_rng(0).permutation(n))
        assert np.unique(out).size == n
    else:
        gen = torch.Generator().manual_seed(0)
        out = benchmark(lambda: torch.randperm(n, generator=gen).split(n // j))
        assert sum(len(p) for p in out) == n
    benchmark.extra_info.update(labels=n, clients=j, bytes=int(y.nbytes))


@pytest.mark.parametrize("size", SIZE_PARAMS)
def bench_partition_stats(benchmark, size):
    """The per-client class-count table (one bincount over all indices)."""
    from fastfl.utils.dataset import partition_stats

    n, j = SIZES[size]
    y = _labels(n)
    parts = F.homo_partition(F.balance_split(j, n), n, rng=0)
    benchmark.group = f"partition-stats-{size}"
    stats = benchmark(partition_stats, parts, y, K)
    assert stats.class_counts.sum() == n - n % j
    benchmark.extra_info.update(labels=n, clients=j, bytes=int(y.nbytes))

"""Shared checks of the partition tests."""

from __future__ import annotations

import numpy as np


def labels(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Labels of n samples over k classes, in random order (every class present)."""
    y = np.arange(n) % k
    np.random.default_rng(seed).shuffle(y)
    return y


def assert_disjoint(client_dict: dict, num_samples: int) -> np.ndarray:
    """No index used twice, all in range; returns the union."""
    assert sorted(client_dict) == list(range(len(client_dict)))
    allidx = np.concatenate([np.asarray(v, dtype=np.int64) for v in client_dict.values()])
    assert np.unique(allidx).size == allidx.size, "an index is used twice"
    assert allidx.size == 0 or (allidx.min() >= 0 and allidx.max() < num_samples)
    return allidx


def assert_exact_cover(client_dict: dict, num_samples: int) -> None:
    """Every index used exactly once."""
    assert assert_disjoint(client_dict, num_samples).size == num_samples


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[c], b[c]) for c in a)


def mean_entropy(targets: np.ndarray, client_dict: dict, k: int) -> float:
    """Mean per-client class entropy in nats."""
    ents = []
    for idx in client_dict.values():
        if len(idx) == 0:
            continue
        p = np.bincount(targets[idx], minlength=k) / len(idx)
        p = p[p > 0]
        ents.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(ents))

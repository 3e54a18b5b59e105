"""Shared helpers of the partition code: argument checks, random generators, index grouping."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

# The data-set modules import their errors from here (re-exported).
from fastfl.errors import (  # noqa: F401
    DatasetFileError,
    OptionalDependencyError,
    PartitionError,
    PartitionTypeError,
)

RngLike = np.random.Generator | int | np.integer | None


def as_rng(rng: RngLike, name: str = "rng") -> np.random.Generator:
    """Return a numpy Generator: ``rng`` itself, one seeded with it, or a fresh one for None.

    fastfl never touches numpy's global random state: every function takes its own generator.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        if rng is not None and rng < 0:
            raise PartitionError(f"{name} must be a non-negative integer seed, got {rng}")
        return np.random.default_rng(None if rng is None else int(rng))
    raise PartitionTypeError(
        f"{name} must be a numpy Generator, an integer seed or None, not {type(rng).__name__}"
    )


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """Return ``value`` as an int after checking that it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PartitionTypeError(f"{name} must be an int, not {type(value).__name__} ({value!r})")
    if value < minimum:
        raise PartitionError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking that it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PartitionTypeError(f"{name} must be a positive number, not {type(value).__name__} ({value!r})")
    if not math.isfinite(value) or value <= 0:
        raise PartitionError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def as_labels(targets: Any, num_classes: int | None = None, name: str = "targets") -> np.ndarray:
    """Return ``targets`` (list, ndarray or CPU tensor) as a 1-D int64 array of class labels.

    Labels must be integers in ``[0, num_classes)``; floats holding whole numbers are accepted.
    """
    arr = np.asarray(targets)
    if arr.ndim != 1:
        raise PartitionError(f"{name} must be 1-D (one label per sample), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if arr.size and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise PartitionTypeError(f"{name} must hold integer class labels, got non-integer floats")
    elif arr.dtype.kind not in "iu":
        raise PartitionTypeError(f"{name} must hold integer class labels, not dtype {arr.dtype}")
    labels = arr.astype(np.int64, copy=False)
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0:
            raise PartitionError(f"{name} must hold labels >= 0, found {low}")
        if num_classes is not None and high >= num_classes:
            raise PartitionError(
                f"{name} holds label {high} but num_classes is {num_classes}; "
                f"labels must lie in [0, num_classes)"
            )
    return labels


def check_clients(num_clients: Any, num_samples: int) -> int:
    """Check that ``num_clients`` is an int in ``[1, num_samples]``."""
    num_clients = check_int("num_clients", num_clients, 1)
    if num_clients > num_samples:
        raise PartitionError(
            f"num_clients ({num_clients}) is larger than the number of samples ({num_samples}); "
            f"every client needs at least one sample"
        )
    return num_clients


def _small(values: np.ndarray, limit: int) -> np.ndarray:
    """Cast ints in ``[0, limit]`` to the smallest signed type, so numpy's stable sort is a radix sort."""
    dtype = np.int16 if limit < 2**15 else np.int32 if limit < 2**31 else np.int64
    return values.astype(dtype, copy=False)


def split_by_counts(
    labels: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """Hand out samples by a client-by-class count matrix, uniformly at random, in O(N).

    Args:
        labels: int64 labels, one per sample.
        counts: ``(num_clients, num_classes)`` ints; column k sums to at most the size of class k
            (the rest of class k is dropped).
        rng: the generator; one permutation of the samples is all the randomness used.

    Returns:
        ``{client: int64 indices}``, each client's indices in random order.
    """
    num_clients, num_classes = counts.shape
    n = labels.shape[0]
    perm = rng.permutation(n)
    by_class = np.argsort(_small(labels, num_classes)[perm], kind="stable")  # classes, random within
    leftover = np.bincount(labels, minlength=num_classes) - counts.sum(axis=0)
    if np.any(leftover < 0):
        raise PartitionError("a class was asked for more samples than it holds")
    full = np.concatenate([counts.T, leftover[:, None]], axis=1)  # (K, J + 1); column J = dropped
    client_ids = _small(np.arange(num_clients + 1), num_clients)
    owner = np.empty(n, dtype=client_ids.dtype)
    owner[by_class] = np.repeat(np.tile(client_ids, num_classes), full.ravel())  # owner in perm order
    by_client = np.argsort(owner, kind="stable")  # clients, in perm (random) order within each
    offsets = np.zeros(num_clients + 1, dtype=np.int64)
    np.cumsum(counts.sum(axis=1), out=offsets[1:])
    chosen = perm[by_client[: offsets[-1]]]
    return {cid: chosen[offsets[cid] : offsets[cid + 1]] for cid in range(num_clients)}

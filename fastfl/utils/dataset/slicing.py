"""FedLab's older slicing API: FedAvg shards and IID random slices of a data set with ``targets``."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastfl.utils.dataset._common import PartitionError, RngLike, as_rng, check_clients
from fastfl.utils.dataset._sizes import shards_partition


def noniid_slicing(
    dataset: Any, num_clients: int, num_shards: int, rng: RngLike = None
) -> dict[int, np.ndarray]:
    """FedAvg's shards: sort by ``dataset.targets``, give each client ``num_shards // num_clients`` shards.

    Linear time (FedLab rebuilds a set of the free shards per client). Same result type:
    ``{client: int64 array}``.
    """
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise PartitionError("noniid_slicing needs dataset.targets, the label of every sample")
    return shards_partition(targets, num_clients, num_shards, rng=rng)


def random_slicing(dataset: Any, num_clients: int, rng: RngLike = None) -> dict[int, list[int]]:
    """IID slices: each client gets ``len(dataset) // num_clients`` distinct random indices.

    Linear time (FedLab rebuilds ``list(set(...))`` per client, O(J·N)). Same result type:
    ``{client: list of int}``; the remainder is dropped.
    """
    num_samples = len(dataset)
    num_clients = check_clients(num_clients, num_samples)
    per = num_samples // num_clients
    perm = as_rng(rng).permutation(num_samples)[: per * num_clients].reshape(num_clients, per)
    return {cid: perm[cid].tolist() for cid in range(num_clients)}

"""Client sample counts and label-free partitions: balanced, log-normal, Dirichlet, IID, shards, FCUBE."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fastfl.utils.dataset._common import (
    OptionalDependencyError,
    PartitionError,
    RngLike,
    as_labels,
    as_rng,
    check_clients,
    check_int,
    check_positive,
)


def split_indices(num_cumsum: Any, rand_perm: Any) -> dict[int, np.ndarray]:
    """Cut ``rand_perm`` at the cumulative counts ``num_cumsum``; the tail after the last cut is dropped.

    Args:
        num_cumsum: non-decreasing cumulative sample counts, one per client.
        rand_perm: the (shuffled) sample indices to cut.

    Returns:
        ``{client_id: indices}``.
    """
    cuts = np.asarray(num_cumsum, dtype=np.int64)
    perm = np.asarray(rand_perm)
    if cuts.ndim != 1:
        raise PartitionError(f"num_cumsum must be 1-D, got shape {cuts.shape}")
    if cuts.size and (np.any(np.diff(cuts) < 0) or cuts[0] < 0 or cuts[-1] > perm.shape[0]):
        raise PartitionError(f"num_cumsum must be non-decreasing within [0, len(rand_perm)={perm.shape[0]}]")
    return dict(enumerate(np.split(perm, cuts)[:-1]))


def balance_split(num_clients: int, num_samples: int) -> np.ndarray:
    """Give every client ``num_samples // num_clients`` samples (the remainder is not assigned)."""
    num_samples = check_int("num_samples", num_samples, 1)
    num_clients = check_clients(num_clients, num_samples)
    return np.full(num_clients, num_samples // num_clients, dtype=np.int64)


def _round_to_total(shares: np.ndarray, total: int) -> np.ndarray:
    """Round non-negative real ``shares`` that sum to ``total`` to ints with the same sum.

    Largest-remainder rounding: each count is the floor or the ceiling of its share.
    """
    counts = np.floor(shares).astype(np.int64)
    missing = total - int(counts.sum())
    if missing > 0:
        order = np.argsort(-(shares - counts), kind="stable")
        counts[order[:missing]] += 1
    return counts


def lognormal_unbalance_split(
    num_clients: int, num_samples: int, unbalance_sgm: float, rng: RngLike = None
) -> np.ndarray:
    """Draw client sample counts from a log-normal distribution; they sum to ``num_samples``.

    Counts are proportional to draws from LogNormal(log(num_samples // num_clients), unbalance_sgm).
    FedLab gives the whole rounding remainder to client 0 (bug B22); fastfl rounds each share to
    the nearest integer that keeps the total (largest remainder).

    Args:
        num_clients: number of clients.
        num_samples: total number of samples.
        unbalance_sgm: sigma of the log-normal; 0 gives :func:`balance_split`.
        rng: numpy Generator or seed.
    """
    num_samples = check_int("num_samples", num_samples, 1)
    num_clients = check_clients(num_clients, num_samples)
    if unbalance_sgm == 0:
        return balance_split(num_clients, num_samples)
    sgm = check_positive("unbalance_sgm", unbalance_sgm)
    draws = as_rng(rng).lognormal(np.log(num_samples // num_clients), sgm, size=num_clients)
    return _round_to_total(draws / draws.sum() * num_samples, num_samples)


def dirichlet_unbalance_split(
    num_clients: int, num_samples: int, alpha: float, rng: RngLike = None, min_size: int = 10
) -> np.ndarray:
    """Draw client sample counts from a Dirichlet distribution; each is at least ``min_size``.

    FedLab redraws ``p ~ Dir(alpha)`` until every ``p_j * N >= 10``, which never ends when that
    is unlikely (small alpha, many clients), and drops the rounding remainder. fastfl gives every
    client ``min_size`` samples and shares the rest by ``p ~ Dir(alpha)``, rounded so that the
    counts sum to ``num_samples``.

    Args:
        num_clients: number of clients.
        num_samples: total number of samples.
        alpha: Dirichlet concentration (> 0); small means very unequal sizes.
        rng: numpy Generator or seed.
        min_size: the smallest allowed client size.
    """
    num_samples = check_int("num_samples", num_samples, 1)
    num_clients = check_clients(num_clients, num_samples)
    alpha = check_positive("alpha", alpha)
    min_size = check_int("min_size", min_size, 0)
    if num_clients * min_size > num_samples:
        raise PartitionError(
            f"{num_clients} clients with at least min_size={min_size} samples each need "
            f"{num_clients * min_size} samples, but there are {num_samples}; lower min_size"
        )
    rest = num_samples - num_clients * min_size
    p = as_rng(rng).dirichlet(np.full(num_clients, alpha))
    return min_size + _round_to_total(p / p.sum() * rest, rest)


def homo_partition(client_sample_nums: Any, num_samples: int, rng: RngLike = None) -> dict[int, np.ndarray]:
    """IID partition: a random permutation cut into pieces of the given sizes.

    Samples beyond ``sum(client_sample_nums)`` are dropped.
    """
    num_samples = check_int("num_samples", num_samples, 1)
    nums = np.asarray(client_sample_nums)
    if nums.ndim != 1 or nums.dtype.kind not in "iu" or (nums.size and nums.min() < 0):
        raise PartitionError("client_sample_nums must be a 1-D array of non-negative integers")
    if int(nums.sum()) > num_samples:
        raise PartitionError(
            f"client_sample_nums ask for {int(nums.sum())} samples but num_samples is {num_samples}"
        )
    return split_indices(np.cumsum(nums), as_rng(rng).permutation(num_samples))


def shards_partition(
    targets: Any, num_clients: int, num_shards: int, rng: RngLike = None
) -> dict[int, np.ndarray]:
    """FedAvg's non-IID partition: sort by label, cut into shards, give each client random shards.

    Every client gets ``num_shards // num_clients`` shards of ``N // num_shards`` samples. The
    label sort is stable, so the result does not depend on numpy's sort implementation.
    """
    labels = as_labels(targets)
    num_samples = labels.shape[0]
    num_shards = check_int("num_shards", num_shards, 1)
    num_clients = check_clients(num_clients, num_samples)
    if num_shards > num_samples:
        raise PartitionError(
            f"num_shards ({num_shards}) is larger than the number of samples ({num_samples})"
        )
    if num_shards < num_clients:
        raise PartitionError(
            f"num_shards ({num_shards}) is smaller than num_clients ({num_clients}); "
            f"every client needs at least one shard"
        )
    size = num_samples // num_shards
    per = num_shards // num_clients
    if num_samples % num_shards:
        warnings.warn(
            "warning: length of dataset isn't divided exactly by num_shards. Some samples will be dropped.",
            stacklevel=2,
        )
    if num_shards % num_clients:
        warnings.warn(
            "warning: num_shards isn't divided exactly by num_clients. Some shards will be dropped.",
            stacklevel=2,
        )
    by_label = np.argsort(labels, kind="stable")
    shards = as_rng(rng).permutation(num_shards)[: num_clients * per].reshape(num_clients, per)
    take = (shards[:, :, None] * size + np.arange(size)).reshape(num_clients, per * size)
    chosen = by_label[take]
    return {cid: chosen[cid] for cid in range(num_clients)}


def fcube_synthetic_partition(data: Any) -> dict[int, np.ndarray]:
    """FCUBE's feature-skew partition: 4 clients by the signs of the three coordinates.

    Client 0 holds the octants (+,+,+) and (-,-,-), client 1 (+,+,-) and (-,-,+), client 2
    (+,-,+) and (-,+,-), client 3 the rest (including points with a zero coordinate).
    """
    points = np.asarray(data)
    if points.ndim != 2 or points.shape[1] != 3:
        raise PartitionError(f"data must have shape (num_samples, 3), got {points.shape}")
    pos, neg = points > 0, points < 0
    p1, p2, p3 = pos.T
    n1, n2, n3 = neg.T
    owners = np.full(points.shape[0], 3, dtype=np.int64)
    owners[(p1 & p2 & n3) | (n1 & n2 & p3)] = 1
    owners[(p1 & n2 & p3) | (n1 & p2 & n3)] = 2
    owners[(p1 & p2 & p3) | (n1 & n2 & n3)] = 0
    return {cid: np.flatnonzero(owners == cid) for cid in range(4)}


def samples_num_count(client_dict: dict[int, Any], num_clients: int) -> Any:
    """Return a pandas DataFrame with the sample count of each client, indexed by ``client``.

    Needs pandas (FedLab's return type); :func:`fastfl.utils.dataset.partition_stats` gives the
    same numbers, and more, without it.
    """
    num_clients = check_int("num_clients", num_clients, 1)
    missing = [cid for cid in range(num_clients) if cid not in client_dict]
    if missing:
        raise PartitionError(f"client_dict has no entry for client(s) {missing[:5]}")
    try:
        import pandas as pd
    except ImportError as exc:
        raise OptionalDependencyError(
            "samples_num_count returns a pandas DataFrame: pip install pandas, or use "
            "fastfl.utils.dataset.partition_stats, which needs no pandas"
        ) from exc
    counts = [len(client_dict[cid]) for cid in range(num_clients)]
    frame = pd.DataFrame({"client": range(num_clients), "num_samples": counts})
    return frame.set_index("client")

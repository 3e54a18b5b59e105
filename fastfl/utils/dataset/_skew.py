"""Label-skew partitions: hetero-Dirichlet, client-inner Dirichlet, #C classes, extended Dirichlet.

Each scheme first decides a client-by-class count matrix (a loop over classes or over rounds,
never over samples), then hands out the samples of each class at random in O(N).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from fastfl.utils.dataset._common import (
    PartitionError,
    RngLike,
    as_labels,
    as_rng,
    check_clients,
    check_int,
    check_positive,
    split_by_counts,
)

MAX_RETRIES = 1000


def _finish(labels: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Hand out the samples of each class by ``counts`` and return ``{client: indices}``."""
    return split_by_counts(labels, counts, rng)


def _cut(shares: np.ndarray, total: int) -> np.ndarray:
    """FedLab's cut: piece j of ``total`` items ends at ``int(cumsum(shares)[j] * total)``."""
    ends = (np.cumsum(shares) * total).astype(np.int64)
    ends[-1] = total
    np.minimum(ends, total, out=ends)
    return np.diff(ends, prepend=0)


def _hetero_counts(
    class_sizes: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """One draw of hetero-Dirichlet: per class, p ~ Dir(alpha), masked for clients already full."""
    num_samples = int(class_sizes.sum())
    counts = np.zeros((num_clients, class_sizes.shape[0]), dtype=np.int64)
    sizes = np.zeros(num_clients, dtype=np.int64)
    draws = rng.dirichlet(np.full(num_clients, alpha), size=class_sizes.shape[0])
    for k, size_k in enumerate(class_sizes):
        p = draws[k] * (sizes < num_samples / num_clients)
        if p.sum() <= 0:  # every client full (FedLab divides by zero here): plain shares
            p = np.full(num_clients, 1.0)
        counts[:, k] = _cut(p / p.sum(), int(size_k))
        sizes += counts[:, k]
    return counts


def hetero_dir_partition(
    targets: Any,
    num_clients: int,
    num_classes: int,
    dir_alpha: float,
    min_require_size: int | None = None,
    rng: RngLike = None,
) -> dict[int, np.ndarray]:
    """Hetero-Dirichlet label skew: each class is split over the clients by ``p ~ Dir_J(alpha)``.

    Clients that already hold N/J samples get no more. The draw is repeated until every client
    holds at least ``min_require_size`` samples (default ``num_classes``), at most 1000 times;
    then a clear error says which argument to change (FedLab loops forever). Every sample is
    assigned exactly once.
    """
    labels = as_labels(targets, check_int("num_classes", num_classes, 1))
    num_clients = check_clients(num_clients, labels.shape[0])
    alpha = check_positive("dir_alpha", dir_alpha)
    need = num_classes if min_require_size is None else check_int("min_require_size", min_require_size)
    if need * num_clients > labels.shape[0]:
        raise PartitionError(
            f"min_require_size={need} for {num_clients} clients needs {need * num_clients} samples, "
            f"but there are {labels.shape[0]}; lower min_require_size"
        )
    gen = as_rng(rng)
    class_sizes = np.bincount(labels, minlength=num_classes)
    for _ in range(MAX_RETRIES):
        counts = _hetero_counts(class_sizes, num_clients, alpha, gen)
        if counts.sum(axis=1).min() >= need:
            return _finish(labels, counts, gen)
    raise PartitionError(
        f"hetero_dir_partition found no draw in {MAX_RETRIES} tries where every client gets "
        f"min_require_size={need} samples; raise dir_alpha ({alpha}) or lower min_require_size"
    )


def _restricted(prior: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """Class probabilities of each client over the classes that still have samples.

    A client whose prior mass on those classes is zero (FedLab hangs there, bug B7) draws in
    proportion to the samples left.
    """
    q = prior * (remaining > 0)
    mass = q.sum(axis=1, keepdims=True)
    empty = mass[:, 0] <= 0
    if np.any(empty):
        q[empty] = remaining
        mass[empty] = remaining.sum()
    return q / mass


def _inner_counts(
    prior: np.ndarray,
    capacity: np.ndarray,
    class_sizes: np.ndarray,
    rng: np.random.Generator,
    verbose: bool,
) -> np.ndarray:
    """Client-by-class counts of the client-inner Dirichlet scheme, in at most K + 1 rounds.

    Each round, every client that still has room draws the classes of all its missing samples
    from its prior restricted to the classes not yet used up. A class asked for more than it has
    goes to a uniformly random subset of the requests (multivariate hypergeometric), as in a
    random order of the per-sample draws; the refused requests are drawn again next round.
    """
    counts = np.zeros(prior.shape, dtype=np.int64)
    capacity = capacity.copy()
    remaining = class_sizes.copy()
    while capacity.sum() > 0:
        if verbose:
            print(f"Remaining Data: {int(capacity.sum())}")
        active = np.flatnonzero(capacity > 0)
        q = _restricted(prior[active], remaining)
        demand = rng.multinomial(capacity[active], q)
        over = demand.sum(axis=0) > remaining
        for k in np.flatnonzero(over):
            demand[:, k] = rng.multivariate_hypergeometric(demand[:, k], int(remaining[k]))
        counts[active] += demand
        capacity[active] -= demand.sum(axis=1)
        remaining -= demand.sum(axis=0)
    return counts


def client_inner_dirichlet_partition(
    targets: Any,
    num_clients: int,
    num_classes: int,
    dir_alpha: float,
    client_sample_nums: Any,
    verbose: bool = True,
    rng: RngLike = None,
) -> dict[int, np.ndarray]:
    """Client-inner Dirichlet label skew with given client sizes (Acar et al., FedDyn).

    Client j draws its class mix ``q_j ~ Dir_K(alpha)`` and each of its samples' classes from
    ``q_j``; a class that is used up is redrawn among the others. Unlike FedLab, the returned
    indices really have those labels (bug B6), the scheme always ends (bug B7), and
    ``client_sample_nums`` is not modified. Samples beyond ``sum(client_sample_nums)`` are dropped.

    Args:
        targets: class label of each sample.
        num_clients: number of clients.
        num_classes: number of classes.
        dir_alpha: Dirichlet concentration (> 0); small means few classes per client.
        client_sample_nums: sample count of each client.
        verbose: print the number of samples left to assign after each round.
        rng: numpy Generator or seed.
    """
    labels = as_labels(targets, check_int("num_classes", num_classes, 1))
    num_clients = check_clients(num_clients, labels.shape[0])
    alpha = check_positive("dir_alpha", dir_alpha)
    nums = np.asarray(client_sample_nums)
    if nums.shape != (num_clients,) or nums.dtype.kind not in "iu" or nums.min() < 0:
        raise PartitionError(
            f"client_sample_nums must hold {num_clients} non-negative integers, got {nums!r:.80}"
        )
    if int(nums.sum()) > labels.shape[0]:
        raise PartitionError(
            f"client_sample_nums ask for {int(nums.sum())} samples but targets hold {labels.shape[0]}"
        )
    gen = as_rng(rng)
    prior = gen.dirichlet(np.full(num_classes, alpha), size=num_clients)
    class_sizes = np.bincount(labels, minlength=num_classes)
    counts = _inner_counts(prior, nums.astype(np.int64), class_sizes, gen, verbose)
    return _finish(labels, counts, gen)


def assign_classes(
    num_clients: int, num_classes: int, major_classes_num: int, rng: np.random.Generator
) -> np.ndarray:
    """The #C class sets: client j holds class ``j mod K`` and C - 1 other distinct random classes.

    Returns:
        A ``(num_clients, num_classes)`` bool membership matrix.
    """
    keys = rng.random((num_clients, num_classes))
    first = np.arange(num_clients) % num_classes
    keys[np.arange(num_clients), first] = -1.0
    chosen = np.argpartition(keys, major_classes_num - 1, axis=1)[:, :major_classes_num]
    member = np.zeros((num_clients, num_classes), dtype=bool)
    member[np.arange(num_clients)[:, None], chosen] = True
    return member


def _check_classes_per_client(labels: np.ndarray, member: np.ndarray) -> None:
    """Warn when samples are dropped because no client holds their class."""
    orphan = np.flatnonzero(~member.any(axis=0) & (np.bincount(labels, minlength=member.shape[1]) > 0))
    if orphan.size:
        warnings.warn(
            f"no client holds class(es) {orphan[:10].tolist()}: their samples are dropped "
            f"(use more clients or more classes per client)",
            stacklevel=3,
        )


def _setup_quantity(
    targets: Any, num_clients: int, num_classes: int, major_classes_num: int
) -> tuple[np.ndarray, int, int]:
    labels = as_labels(targets, check_int("num_classes", num_classes, 1))
    num_clients = check_clients(num_clients, labels.shape[0])
    major = check_int("major_classes_num", major_classes_num, 1)
    if major > num_classes:
        raise PartitionError(
            f"major_classes_num ({major}) is larger than num_classes ({num_classes}); "
            f"a client cannot hold more classes than exist"
        )
    return labels, num_clients, major


def label_skew_quantity_based_partition(
    targets: Any, num_clients: int, num_classes: int, major_classes_num: int, rng: RngLike = None
) -> dict[int, np.ndarray]:
    """The "#C" label skew of NIID-Bench: each client holds ``major_classes_num`` classes.

    Each class is split into nearly equal parts among the clients that hold it. Targets may be a
    list; ``major_classes_num > num_classes`` is an error (FedLab loops forever, bug B11); the
    samples of a class no client holds are dropped with a warning (FedLab raises from numpy).
    """
    labels, num_clients, major = _setup_quantity(targets, num_clients, num_classes, major_classes_num)
    gen = as_rng(rng)
    member = assign_classes(num_clients, num_classes, major, gen)
    _check_classes_per_client(labels, member)
    holders = member.sum(axis=0)
    sizes = np.bincount(labels, minlength=num_classes)
    base, extra = np.divmod(sizes, np.maximum(holders, 1))
    rank = np.cumsum(member, axis=0) - 1  # position of client j among the holders of class k
    counts = member * (base + (rank < extra))
    return _finish(labels, counts.astype(np.int64), gen)


def _exdir_counts(
    member: np.ndarray, sizes: np.ndarray, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """Split every class over its holders by ``p ~ Dir(alpha)`` at once (normalised gammas).

    Cuts as in :func:`_cut`: the last holder of a class takes the rounding remainder.
    """
    shares = rng.standard_gamma(alpha, size=member.shape) * member
    total = shares.sum(axis=0)
    underflow = (total <= 0) & member.any(axis=0)  # tiny alpha: every gamma rounded to 0
    shares[:, underflow] = member[:, underflow]
    shares /= np.maximum(shares.sum(axis=0), np.finfo(float).tiny)
    ends = np.floor(np.cumsum(shares, axis=0) * sizes).astype(np.int64)
    last = member.shape[0] - 1 - np.argmax(member[::-1], axis=0)
    ends = np.where(np.arange(member.shape[0])[:, None] >= last, sizes, np.minimum(ends, sizes))
    counts = np.diff(ends, axis=0, prepend=0)
    counts[:, ~member.any(axis=0)] = 0  # classes no client holds are dropped
    return counts


def extended_dirichlet_partition(
    targets: Any,
    num_clients: int,
    num_classes: int,
    major_classes_num: int,
    dir_alpha: float,
    min_require_size: int = 1,
    rng: RngLike = None,
) -> dict[int, np.ndarray]:
    """Extended Dirichlet (FedLab issue #337): C classes per client, Dirichlet proportions.

    Clients get ``major_classes_num`` classes as in the "#C" scheme; then each class is split
    over the clients that hold it by ``p ~ Dir(alpha)``. Redrawn until every client has at least
    ``min_require_size`` samples (at most 1000 times, then a clear error).
    """
    labels, num_clients, major = _setup_quantity(targets, num_clients, num_classes, major_classes_num)
    alpha = check_positive("dir_alpha", dir_alpha)
    need = check_int("min_require_size", min_require_size)
    gen = as_rng(rng)
    member = assign_classes(num_clients, num_classes, major, gen)
    _check_classes_per_client(labels, member)
    sizes = np.bincount(labels, minlength=num_classes)
    for _ in range(MAX_RETRIES):
        counts = _exdir_counts(member, sizes, alpha, gen)
        if counts.sum(axis=1).min() >= need:
            return _finish(labels, counts, gen)
    raise PartitionError(
        f"extended_dirichlet_partition found no draw in {MAX_RETRIES} tries where every client "
        f"gets min_require_size={need} samples; raise dir_alpha or lower min_require_size"
    )

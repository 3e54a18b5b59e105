"""FedLab's partitioner classes: pick a scheme by its parameters, keep ``{client: indices}``.

A partitioner draws from its own numpy Generator seeded with ``seed`` (FedLab reseeds numpy's
global generator instead), so the same seed gives the same partition whatever else runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fastfl.utils.dataset import functional as F
from fastfl.utils.dataset._base import DataPartitioner, DictPartitioner, check_alpha, check_labels
from fastfl.utils.dataset._basic import (
    BASIC_SCHEMES,
    AdultPartitioner,
    BasicPartitioner,
    CovtypePartitioner,
    FMNISTPartitioner,
    MNISTPartitioner,
    RCV1Partitioner,
    SVHNPartitioner,
    VisionPartitioner,
)
from fastfl.utils.dataset._common import PartitionError, as_labels, as_rng, check_int

__all__ = [
    "BASIC_SCHEMES",
    "AdultPartitioner",
    "BasicPartitioner",
    "CIFAR10Partitioner",
    "CIFAR100Partitioner",
    "CovtypePartitioner",
    "DataPartitioner",
    "FCUBEPartitioner",
    "FMNISTPartitioner",
    "MNISTPartitioner",
    "RCV1Partitioner",
    "SVHNPartitioner",
    "VisionPartitioner",
]


class CIFAR10Partitioner(DictPartitioner):
    """CIFAR10 partitioner with FedLab's six schemes.

    - ``balance=None, partition="dirichlet"``: hetero-Dirichlet (:func:`hetero_dir_partition`);
    - ``balance=None, partition="shards"``: FedAvg shards (:func:`shards_partition`);
    - ``balance=True``: equal client sizes; ``balance=False``: log-normal sizes with sigma
      ``unbalance_sgm``; each with ``partition="iid"`` (:func:`homo_partition`) or
      ``partition="dirichlet"`` (:func:`client_inner_dirichlet_partition`).

    Args:
        targets: class label of each sample.
        num_clients: number of clients.
        balance: None, True or False (see above).
        partition: "iid", "dirichlet" or "shards".
        unbalance_sgm: log-normal sigma for ``balance=False``.
        num_shards: number of shards for "shards".
        dir_alpha: Dirichlet concentration for "dirichlet".
        verbose: print progress of the client-inner Dirichlet scheme.
        seed: seed of this partitioner's own numpy Generator (None: from the OS).
        min_require_size: smallest client for hetero-Dirichlet (FedLab 1.2.1 hard-codes 10).
    """

    num_classes: ClassVar[int] = 10

    def __init__(
        self,
        targets: Any,
        num_clients: int,
        balance: bool | None = True,
        partition: str = "iid",
        unbalance_sgm: float = 0,
        num_shards: int | None = None,
        dir_alpha: float | None = None,
        verbose: bool = True,
        seed: int | None = None,
        min_require_size: int = 10,
    ) -> None:
        self.targets = as_labels(targets)
        self.num_samples = self.targets.shape[0]
        self.num_clients = check_int("num_clients", num_clients, 1)
        self.balance, self.partition = balance, partition
        self.unbalance_sgm, self.num_shards, self.dir_alpha = unbalance_sgm, num_shards, dir_alpha
        self.verbose, self.seed, self.min_require_size = verbose, seed, min_require_size
        self._rng = as_rng(seed, "seed")
        self._check()
        self.client_dict = self._perform_partition()

    def _check(self) -> None:
        if self.balance is None:
            if self.partition not in ("dirichlet", "shards"):
                raise PartitionError(
                    f"balance=None supports partition='dirichlet' or 'shards', not {self.partition!r}; "
                    f"use balance=True or False for 'iid'"
                )
        elif isinstance(self.balance, bool):
            if self.partition not in ("iid", "dirichlet"):
                raise PartitionError(
                    f"balance={self.balance} supports partition='iid' or 'dirichlet', not "
                    f"{self.partition!r}; use balance=None for 'shards'"
                )
        else:
            raise PartitionError(
                f"'balance' can only be NoneType or bool, not {type(self.balance).__name__}."
            )
        if self.partition == "dirichlet":
            check_alpha(self.dir_alpha, "dirichlet")
        if self.partition != "iid":
            check_labels(self.targets, self.num_classes, type(self).__name__)
        if self.partition == "shards" and self.num_shards is None:
            raise PartitionError("partition='shards' needs num_shards, the number of shards")

    def _perform_partition(self) -> dict[int, np.ndarray]:
        t, j, k, rng = self.targets, self.num_clients, self.num_classes, self._rng
        if self.balance is None and self.partition == "dirichlet":
            return F.hetero_dir_partition(t, j, k, self.dir_alpha, self.min_require_size, rng=rng)
        if self.balance is None:
            return F.shards_partition(t, j, self.num_shards, rng=rng)
        if self.balance:
            nums = F.balance_split(j, self.num_samples)
        else:
            nums = F.lognormal_unbalance_split(j, self.num_samples, self.unbalance_sgm, rng=rng)
        if self.partition == "iid":
            return F.homo_partition(nums, self.num_samples, rng=rng)
        return F.client_inner_dirichlet_partition(t, j, k, self.dir_alpha, nums, self.verbose, rng=rng)


class CIFAR100Partitioner(CIFAR10Partitioner):
    """CIFAR100 partitioner: :class:`CIFAR10Partitioner` with 100 classes."""

    num_classes: ClassVar[int] = 100


class FCUBEPartitioner(DictPartitioner):
    """FCUBE partitioner: 4 clients, ``"synthetic"`` (by octant) or ``"iid"``.

    Args:
        data: FCUBE points, shape ``(num_samples, 3)``.
        partition: "synthetic" or "iid".
        seed: seed for "iid" (fastfl addition; FedLab uses the global generator).
    """

    num_classes: ClassVar[int] = 2
    num_clients: ClassVar[int] = 4

    def __init__(self, data: Any, partition: str, seed: int | None = None) -> None:
        if partition not in ("synthetic", "iid"):
            raise PartitionError(f"FCUBE only supports 'synthetic' and 'iid' partition, not {partition}.")
        self.partition = partition
        self.data = data
        self.num_samples = data.shape[0] if isinstance(data, np.ndarray) else len(data)
        self._rng = as_rng(seed, "seed")
        self.client_dict = self._perform_partition()

    def _perform_partition(self) -> dict[int, np.ndarray]:
        if self.partition == "synthetic":
            return F.fcube_synthetic_partition(self.data)
        nums = F.balance_split(self.num_clients, self.num_samples)
        return F.homo_partition(nums, self.num_samples, rng=self._rng)

"""FedLab's partitioner classes: pick a scheme by its parameters, keep ``{client: indices}``.

A partitioner draws from its own numpy Generator seeded with ``seed`` (FedLab reseeds numpy's
global generator instead), so the same seed gives the same partition whatever else runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from fastfl.utils.dataset import functional as F
from fastfl.utils.dataset._common import PartitionError, as_labels, as_rng, check_int, check_positive
from fastfl.utils.dataset.stats import PartitionStats, partition_stats


class DataPartitioner(ABC):
    """Base class of the partitioners: ``p[cid]`` gives client ``cid``'s sample indices."""

    client_dict: dict[int, np.ndarray]
    num_classes: ClassVar[int | None] = None

    @abstractmethod
    def _perform_partition(self) -> dict[int, np.ndarray]: ...

    @abstractmethod
    def __getitem__(self, index: int) -> np.ndarray: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @property
    def client_sample_count(self) -> Any:
        """Sample count per client as a pandas DataFrame indexed by ``client`` (FedLab's form)."""
        return F.samples_num_count(self.client_dict, len(self.client_dict))

    def stats(self) -> PartitionStats:
        """Per-client statistics: sizes and, when the partitioner has labels, class counts."""
        targets = getattr(self, "targets", None)
        if targets is None:
            return partition_stats(self.client_dict)
        num_classes = max(self.num_classes or 0, int(targets.max()) + 1 if targets.size else 0)
        return partition_stats(self.client_dict, targets, num_classes)


class _DictPartitioner(DataPartitioner):
    """Shared indexing of the concrete partitioners."""

    def __getitem__(self, index: int) -> np.ndarray:
        """Sample indices of client ``index``."""
        return self.client_dict[index]

    def __len__(self) -> int:
        """Number of clients."""
        return len(self.client_dict)


def _check_labels(targets: np.ndarray, num_classes: int, owner: str) -> None:
    """Label-based schemes need every label below the partitioner's ``num_classes``."""
    if targets.size and int(targets.max()) >= num_classes:
        raise PartitionError(
            f"targets hold label {int(targets.max())} but {owner} has num_classes={num_classes}; "
            f"use a partitioner with more classes (e.g. VisionPartitioner, CIFAR100Partitioner)"
        )


def _check_alpha(dir_alpha: Any, scheme: str) -> float:
    if dir_alpha is None:
        raise PartitionError(f"partition={scheme!r} needs dir_alpha, a Dirichlet concentration > 0")
    return check_positive("dir_alpha", dir_alpha)


class CIFAR10Partitioner(_DictPartitioner):
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
            _check_alpha(self.dir_alpha, "dirichlet")
        if self.partition != "iid":
            _check_labels(self.targets, self.num_classes, type(self).__name__)
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


BASIC_SCHEMES = ("noniid-#label", "noniid-labeldir", "unbalance", "iid", "noniid-exdir")


class BasicPartitioner(_DictPartitioner):
    """Partitioner of NIID-Bench's schemes for tabular and vision data.

    - ``"noniid-#label"``: each client holds ``major_classes_num`` classes (#C);
    - ``"noniid-labeldir"``: hetero-Dirichlet label skew with ``dir_alpha``;
    - ``"unbalance"``: IID labels, Dirichlet(``dir_alpha``) client sizes;
    - ``"iid"``: IID, equal sizes;
    - ``"noniid-exdir"`` (fastfl): extended Dirichlet, ``major_classes_num`` classes per client
      split by Dirichlet(``dir_alpha``) (FedLab issue #337).

    Args:
        targets: class label of each sample.
        num_clients: number of clients.
        partition: one of the scheme names above.
        dir_alpha: Dirichlet concentration for the Dirichlet schemes.
        major_classes_num: classes per client for "noniid-#label" and "noniid-exdir".
        verbose: accepted for FedLab compatibility (these schemes print nothing).
        seed: seed of this partitioner's own numpy Generator (None: from the OS).
        min_require_size: smallest client for "noniid-labeldir" (FedLab 1.2.1 hard-codes 10).
    """

    num_classes: ClassVar[int] = 2

    def __init__(
        self,
        targets: Any,
        num_clients: int,
        partition: str = "iid",
        dir_alpha: float | None = None,
        major_classes_num: int | None = 1,
        verbose: bool = True,
        seed: int | None = None,
        min_require_size: int = 10,
    ) -> None:
        self.targets = as_labels(targets)
        self.num_samples = self.targets.shape[0]
        self.num_clients = check_int("num_clients", num_clients, 1)
        self.partition, self.dir_alpha, self.verbose, self.seed = partition, dir_alpha, verbose, seed
        self.min_require_size = min_require_size
        self._rng = as_rng(seed, "seed")
        self._check(major_classes_num)
        self.client_dict = self._perform_partition()

    def _check(self, major_classes_num: Any) -> None:
        if self.partition not in BASIC_SCHEMES:
            raise PartitionError(
                "tabular data partition only supports 'noniid-#label', 'noniid-labeldir', 'unbalance', "
                f"'iid' (and fastfl's 'noniid-exdir'). {self.partition} is not supported."
            )
        if self.partition in ("noniid-#label", "noniid-exdir"):
            if major_classes_num is None:
                raise PartitionError(f"partition={self.partition!r} needs major_classes_num, an int")
            major = check_int("major_classes_num", major_classes_num, 1)
            if major >= self.num_classes:
                raise PartitionError(
                    f"major_classes_num must be < num_classes ({self.num_classes}), got {major}; "
                    f"with every class on every client use partition='iid'"
                )
            self.major_classes_num = major
        if self.partition in ("noniid-labeldir", "unbalance", "noniid-exdir"):
            _check_alpha(self.dir_alpha, self.partition)
        if self.partition in ("noniid-#label", "noniid-labeldir", "noniid-exdir"):
            _check_labels(self.targets, self.num_classes, type(self).__name__)

    def _perform_partition(self) -> dict[int, np.ndarray]:
        t, j, k, rng = self.targets, self.num_clients, self.num_classes, self._rng
        if self.partition == "noniid-#label":
            return F.label_skew_quantity_based_partition(t, j, k, self.major_classes_num, rng=rng)
        if self.partition == "noniid-labeldir":
            return F.hetero_dir_partition(t, j, k, self.dir_alpha, self.min_require_size, rng=rng)
        if self.partition == "noniid-exdir":
            return F.extended_dirichlet_partition(t, j, k, self.major_classes_num, self.dir_alpha, rng=rng)
        if self.partition == "unbalance":
            nums = F.dirichlet_unbalance_split(j, self.num_samples, self.dir_alpha, rng=rng)
        else:
            nums = F.balance_split(j, self.num_samples)
        return F.homo_partition(nums, self.num_samples, rng=rng)


class VisionPartitioner(BasicPartitioner):
    """:class:`BasicPartitioner` for 10-class vision data ("noniid-#label" needs major_classes_num)."""

    num_classes: ClassVar[int] = 10

    def __init__(
        self,
        targets: Any,
        num_clients: int,
        partition: str = "iid",
        dir_alpha: float | None = None,
        major_classes_num: int | None = None,
        verbose: bool = True,
        seed: int | None = None,
        min_require_size: int = 10,
    ) -> None:
        super().__init__(
            targets, num_clients, partition, dir_alpha, major_classes_num, verbose, seed, min_require_size
        )


class MNISTPartitioner(VisionPartitioner):
    """Partitioner for MNIST."""

    num_features: ClassVar[int] = 784


class FMNISTPartitioner(VisionPartitioner):
    """Partitioner for FashionMNIST."""

    num_features: ClassVar[int] = 784


class SVHNPartitioner(VisionPartitioner):
    """Partitioner for SVHN."""

    num_features: ClassVar[int] = 1024


class AdultPartitioner(BasicPartitioner):
    """Partitioner for Adult (LIBSVM a9a)."""

    num_features: ClassVar[int] = 123


class RCV1Partitioner(BasicPartitioner):
    """Partitioner for RCV1 (LIBSVM rcv1.binary)."""

    num_features: ClassVar[int] = 47236


class CovtypePartitioner(BasicPartitioner):
    """Partitioner for Covtype (LIBSVM covtype.binary)."""

    num_features: ClassVar[int] = 54


class FCUBEPartitioner(_DictPartitioner):
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

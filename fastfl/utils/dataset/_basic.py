"""NIID-Bench's partitioners (FedLab's BasicPartitioner family) for tabular and vision data."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fastfl.utils.dataset import functional as F
from fastfl.utils.dataset._base import DictPartitioner, check_alpha, check_labels
from fastfl.utils.dataset._common import PartitionError, as_labels, as_rng, check_int

BASIC_SCHEMES = ("noniid-#label", "noniid-labeldir", "unbalance", "iid", "noniid-exdir")


class BasicPartitioner(DictPartitioner):
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
            check_alpha(self.dir_alpha, self.partition)
        if self.partition in ("noniid-#label", "noniid-labeldir", "noniid-exdir"):
            check_labels(self.targets, self.num_classes, type(self).__name__)

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

"""The partitioner base class and the argument checks the partitioners share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from fastfl.utils.dataset import functional as F
from fastfl.utils.dataset._common import PartitionError, check_positive
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


class DictPartitioner(DataPartitioner):
    """Shared indexing of the concrete partitioners."""

    def __getitem__(self, index: int) -> np.ndarray:
        """Sample indices of client ``index``."""
        return self.client_dict[index]

    def __len__(self) -> int:
        """Number of clients."""
        return len(self.client_dict)


def check_labels(targets: np.ndarray, num_classes: int, owner: str) -> None:
    """Label-based schemes need every label below the partitioner's ``num_classes``."""
    if targets.size and int(targets.max()) >= num_classes:
        raise PartitionError(
            f"targets hold label {int(targets.max())} but {owner} has num_classes={num_classes}; "
            f"use a partitioner with more classes (e.g. VisionPartitioner, CIFAR100Partitioner)"
        )


def check_alpha(dir_alpha: Any, scheme: str) -> float:
    if dir_alpha is None:
        raise PartitionError(f"partition={scheme!r} needs dir_alpha, a Dirichlet concentration > 0")
    return check_positive("dir_alpha", dir_alpha)

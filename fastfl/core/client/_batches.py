"""Mini-batches of one client's subset, without a per-sample Python data path when possible."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

__all__ = ["SubsetBatches", "as_index_tensor"]


def as_index_tensor(indices: Sequence[int] | Tensor, name: str) -> Tensor:
    """Return the indices as a 1-D int64 tensor (never the caller's object)."""
    if isinstance(indices, Tensor):
        idx = indices.detach().reshape(-1).to(torch.int64).clone()
    else:
        try:
            idx = torch.as_tensor(list(indices), dtype=torch.int64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a sequence of integer sample indices") from err
    return idx


class SubsetBatches:
    """Re-iterable batches of `dataset[indices]`: each iteration is one epoch.

    A `TensorDataset` of (inputs, labels) is sliced with one gather per epoch, so batches are
    views and no per-sample `__getitem__` runs. Any other dataset goes through a DataLoader.
    The caller's index list is never modified (FedLab's SubsetSampler shuffled it in place).

    Args:
        dataset: the whole data set.
        indices: this client's sample indices.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: draw a new order every epoch.
        generator: the random source of the order (seedable).
    """

    def __init__(
        self,
        dataset: Dataset,
        indices: Tensor,
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ):
        self.dataset = dataset
        self.indices = indices
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self._tensors = dataset.tensors if isinstance(dataset, TensorDataset) else None

    def __len__(self) -> int:
        """The number of batches per epoch."""
        return (len(self.indices) + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        """The number of samples of this client."""
        return len(self.indices)

    def _order(self) -> Tensor:
        if not self.shuffle:
            return self.indices
        perm = torch.randperm(len(self.indices), generator=self.generator)
        return self.indices[perm]

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = self._order()
        if self._tensors is not None:
            parts = [t.index_select(0, order) for t in self._tensors]
            for start in range(0, len(order), self.batch_size):
                yield tuple(p[start : start + self.batch_size] for p in parts)
            return
        loader = DataLoader(Subset(self.dataset, order.tolist()), batch_size=self.batch_size)
        yield from loader

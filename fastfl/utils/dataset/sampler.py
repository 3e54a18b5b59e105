"""Samplers that give a DataLoader one client's samples: from an index list, a rank, or a pickled dict."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from fastfl.utils.dataset._common import PartitionError, PartitionTypeError, RngLike, as_rng, check_int


def _as_index_array(indices: Any, name: str = "indices") -> np.ndarray:
    arr = np.array(indices, copy=True)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise PartitionTypeError(f"{name} must be a 1-D sequence of integer sample indices")
    return arr.astype(np.int64, copy=False)


class SubsetSampler(Sampler[int]):
    """Yield the given sample indices, reshuffled at every epoch when ``shuffle`` is set.

    Unlike FedLab (bug B16), the caller's list is copied, never shuffled in place, and the order
    changes at each epoch (each ``iter()``), drawn from this sampler's own generator.

    Args:
        indices: sample indices of one client.
        shuffle: draw a new order at every epoch.
        seed: seed of the shuffling generator (or a numpy Generator); None: from the OS.
    """

    def __init__(
        self, indices: Sequence[int] | np.ndarray, shuffle: bool = False, seed: RngLike = None
    ) -> None:
        self.indices = _as_index_array(indices)
        self.shuffle = shuffle
        self._rng = as_rng(seed, "seed")

    def __iter__(self) -> Iterator[int]:
        """Indices of one epoch."""
        order = self._rng.permutation(self.indices) if self.shuffle else self.indices
        return iter(order.tolist())

    def __len__(self) -> int:
        """Number of indices."""
        return int(self.indices.shape[0])


class RawPartitionSampler(Sampler[int]):
    """Contiguous equal blocks of a data set, one per client rank (1-based, rank 0 is the server).

    Client ``client_id`` gets ``[(id - 1) * n, id * n)`` with ``n = len(dataset) // num_replicas``.

    Args:
        dataset: anything with a ``len()``.
        client_id: the client's rank, in ``1..num_replicas``.
        num_replicas: number of clients; default ``world_size - 1`` of the initialised process group.
    """

    def __init__(self, dataset: Any, client_id: int, num_replicas: int | None = None) -> None:
        if num_replicas is None:
            import torch.distributed as dist

            if not (dist.is_available() and dist.is_initialized()):
                raise PartitionError(
                    "RawPartitionSampler needs num_replicas, or an initialised torch.distributed "
                    "process group to take world_size - 1 from"
                )
            num_replicas = dist.get_world_size() - 1
        if isinstance(client_id, bool) or not isinstance(client_id, int | np.integer):
            raise PartitionTypeError(f"client_id should be int, not {type(client_id).__name__}")
        self.num_replicas = check_int("num_replicas", num_replicas, 1)
        if not 1 <= client_id <= self.num_replicas:
            raise PartitionError(
                f"client_id must be a client rank in 1..{self.num_replicas} (rank 0 is the server), "
                f"got {client_id}"
            )
        self.client_id = int(client_id)
        self.num_samples = len(dataset) // self.num_replicas
        if self.num_samples == 0:
            raise PartitionError(f"{len(dataset)} samples cannot be split over {self.num_replicas} clients")

    def __iter__(self) -> Iterator[int]:
        """The client's contiguous block of indices."""
        start = (self.client_id - 1) * self.num_samples
        return iter(range(start, start + self.num_samples))

    def __len__(self) -> int:
        """Block size."""
        return self.num_samples


class DictFileSampler(Sampler[int]):
    """Yield client ``client_id``'s indices from a pickled ``{client_id: indices}`` file.

    Args:
        dict_file: path of the pickle (e.g. written by ``save_dict``); only open files you trust.
        client_id: key of the client in the dict.
    """

    def __init__(self, dict_file: str | os.PathLike[str], client_id: Any) -> None:
        with open(dict_file, "rb") as f:
            data = pickle.load(f)
        if not isinstance(data, dict):
            raise PartitionTypeError(
                f"{dict_file} holds a {type(data).__name__}, not a dict of client indices"
            )
        if client_id not in data:
            raise PartitionError(f"{dict_file} has no client {client_id!r} (it has {len(data)} clients)")
        self.indices = _as_index_array(data[client_id], f"the indices of client {client_id!r}")

    def __iter__(self) -> Iterator[int]:
        """The client's indices in stored order."""
        return iter(self.indices.tolist())

    def __len__(self) -> int:
        """Number of indices."""
        return int(self.indices.shape[0])

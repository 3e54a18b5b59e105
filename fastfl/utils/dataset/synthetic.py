"""LEAF-Synthetic: the Synthetic(alpha, beta) federated data of LEAF/FedProx, one softmax model per client."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fastfl.utils.dataset._common import PartitionError, RngLike, as_rng, check_int


def _sample_counts(num_clients: int, num_samples: Any, rng: np.random.Generator) -> np.ndarray:
    if num_samples is None:  # FedProx's choice: a heavy-tailed size per client
        return rng.lognormal(4.0, 2.0, size=num_clients).astype(np.int64) + 50
    counts = np.broadcast_to(np.asarray(num_samples), (num_clients,)).astype(np.int64)
    if np.any(counts < 1):
        raise PartitionError("num_samples must be >= 1 for every client")
    return counts


def generate_synthetic(
    num_clients: int,
    num_classes: int = 10,
    dim: int = 60,
    alpha: float = 1.0,
    beta: float = 1.0,
    iid: bool = False,
    num_samples: Any = None,
    rng: RngLike = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Generate Synthetic(alpha, beta): every client has its own model and its own input mean.

    For client k: ``u_k ~ N(0, alpha^2)``, ``B_k ~ N(0, beta^2)`` (alpha and beta are standard
    deviations, as in FedProx's generator); its model ``W_k, b_k ~ N(u_k, 1)``
    and input mean ``v_k ~ N(B_k, 1)``; inputs ``x ~ N(v_k, diag(j^-1.2))``; label
    ``argmax(W_k x + b_k)``. alpha controls how much the models differ, beta how much the inputs
    differ. With ``iid=True`` all clients share one model ``N(0, 1)`` and zero input mean.

    Args:
        num_clients: number of clients.
        num_classes: number of classes.
        dim: number of features.
        alpha: spread of the client models (>= 0).
        beta: spread of the client input means (>= 0).
        iid: one shared model and input distribution.
        num_samples: samples per client (an int or one per client); None draws
            ``int(LogNormal(4, 2)) + 50`` per client, as FedProx does.
        rng: numpy Generator or seed.

    Returns:
        One ``(x, y)`` pair per client: float32 ``(n_k, dim)`` inputs and int64 ``(n_k,)`` labels.
    """
    num_clients = check_int("num_clients", num_clients, 1)
    num_classes = check_int("num_classes", num_classes, 2)
    dim = check_int("dim", dim, 1)
    if alpha < 0 or beta < 0:
        raise PartitionError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
    gen = as_rng(rng)
    counts = _sample_counts(num_clients, num_samples, gen)
    scale = np.arange(1, dim + 1, dtype=np.float64) ** -0.6  # sqrt of the covariance j^-1.2
    shared_w = gen.normal(0.0, 1.0, (dim, num_classes))
    shared_b = gen.normal(0.0, 1.0, num_classes)
    out = []
    for n in counts.tolist():
        if iid:
            w, b, mean = shared_w, shared_b, np.zeros(dim)
        else:
            u, big_b = gen.normal(0.0, alpha), gen.normal(0.0, beta)
            w = gen.normal(u, 1.0, (dim, num_classes))
            b = gen.normal(u, 1.0, num_classes)
            mean = gen.normal(big_b, 1.0, dim)
        x = mean + gen.standard_normal((n, dim)) * scale
        y = np.argmax(x @ w + b, axis=1)
        out.append((x.astype(np.float32), y.astype(np.int64)))
    return out


class SyntheticDataset(Dataset):
    """All clients' Synthetic(alpha, beta) samples in one Dataset, with the natural ``client_dict``.

    Args:
        num_clients: number of clients.
        seed: seed of the generator.
        **kwargs: the other arguments of :func:`generate_synthetic`.
    """

    def __init__(self, num_clients: int, seed: int = 0, **kwargs: Any) -> None:
        parts = generate_synthetic(num_clients, rng=seed, **kwargs)
        self.data = np.concatenate([x for x, _ in parts])
        self.targets = np.concatenate([y for _, y in parts])
        ends = np.cumsum([y.shape[0] for _, y in parts])
        starts = ends - np.array([y.shape[0] for _, y in parts])
        self.client_dict = {
            cid: np.arange(s, e)
            for cid, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
        }

    def __len__(self) -> int:
        """Number of samples of all clients."""
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """``(features, label)`` of sample ``index``."""
        return torch.from_numpy(self.data[index]), int(self.targets[index])

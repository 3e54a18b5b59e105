"""Partition functions with FedLab 1.2.1's names: client sizes, IID, shards, Dirichlet and #C label skew.

Every function that draws random numbers takes ``rng`` (a numpy Generator or an integer seed) and
never touches numpy's global state; ``rng=None`` draws a fresh seed from the operating system.
The differences from FedLab (bugs B6, B7, B11, B22 fixed; loops that could not end now end with
a clear error) are listed in docs/compat.md.
"""

from __future__ import annotations

from fastfl.utils.dataset._sizes import (
    balance_split,
    dirichlet_unbalance_split,
    fcube_synthetic_partition,
    homo_partition,
    lognormal_unbalance_split,
    samples_num_count,
    shards_partition,
    split_indices,
)
from fastfl.utils.dataset._skew import (
    assign_classes,
    client_inner_dirichlet_partition,
    extended_dirichlet_partition,
    hetero_dir_partition,
    label_skew_quantity_based_partition,
)

__all__ = [
    "assign_classes",
    "balance_split",
    "client_inner_dirichlet_partition",
    "dirichlet_unbalance_split",
    "extended_dirichlet_partition",
    "fcube_synthetic_partition",
    "hetero_dir_partition",
    "homo_partition",
    "label_skew_quantity_based_partition",
    "lognormal_unbalance_split",
    "samples_num_count",
    "shards_partition",
    "split_indices",
]

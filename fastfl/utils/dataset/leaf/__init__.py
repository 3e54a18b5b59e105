"""LEAF's federated data sets (FEMNIST, Shakespeare, Sent140, CelebA, Reddit, Synthetic) in PyTorch.

Reads the JSON files that LEAF's preprocessing writes, serves one `torch.utils.data.Dataset`
per client and split, and keeps a memory-mappable binary cache per split so that later runs
open a data set in milliseconds instead of re-parsing JSON. fastfl downloads nothing: run
LEAF's `preprocess.sh` elsewhere and point `root` at the folder holding `<name>/data/`.

Example:
    >>> from fastfl.utils.dataset.leaf import open_leaf, get_LEAF_dataloader
    >>> train = open_leaf("femnist", "datasets", "train")
    >>> len(train), train.users[0], train.num_samples[0]
    >>> trainloader, testloader = get_LEAF_dataloader("femnist", client_id=0, data_root="datasets")
"""

from __future__ import annotations

from fastfl.errors import LeafCacheError, LeafDataMissingError, LeafFormatError
from fastfl.utils.dataset.leaf.dataset import (
    LeafClientDataset,
    LeafSplit,
    cache_path,
    get_LEAF_dataloader,
    open_leaf,
)
from fastfl.utils.dataset.leaf.source import NAMES, SPLITS
from fastfl.utils.dataset.leaf.synthetic import synthetic_tree
from fastfl.utils.dataset.leaf.text import ALL_LETTERS, IGNORE_INDEX, SPECIALS, tokenize

__all__ = [
    "ALL_LETTERS",
    "IGNORE_INDEX",
    "NAMES",
    "SPECIALS",
    "SPLITS",
    "LeafCacheError",
    "LeafClientDataset",
    "LeafDataMissingError",
    "LeafFormatError",
    "LeafSplit",
    "cache_path",
    "get_LEAF_dataloader",
    "open_leaf",
    "synthetic_tree",
    "tokenize",
]

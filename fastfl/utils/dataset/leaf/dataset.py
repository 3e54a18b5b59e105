"""Per-client access to a LEAF split: users, sample counts, one Dataset per client, data loaders.

`open_leaf` reads a split from its cache file when the cache is valid, and otherwise parses
the JSON files once, writes the cache and maps it. `get_LEAF_dataloader` keeps FedLab's
signature and returns a client's train and test loaders.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from fastfl.errors import LeafCacheError, LeafDataMissingError
from fastfl.utils.dataset.leaf import cache
from fastfl.utils.dataset.leaf.kinds import Arrays, Options, kind_of
from fastfl.utils.dataset.leaf.source import check_name, check_split, fingerprint, json_files, read_split

log = logging.getLogger("fastfl.leaf")


class LeafClientDataset(Dataset):
    """One client's samples of one split, as tensors (FedLab's attribute names)."""

    def __init__(self, client_id: int, client_str: str, data: torch.Tensor, targets: torch.Tensor) -> None:
        self.client_id = client_id
        self.client_str = client_str
        self.data = data
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data[index], self.targets[index]


def build_arrays(name: str, files: list[Path], opts: Options, vocab: list[str] | None = None) -> Arrays:
    """Parse a split's JSON files into the cache's arrays, users sorted by name (LEAF's order)."""
    kind = kind_of(name)
    parts: dict[str, dict[str, Any]] = {}
    for user in read_split(files):
        part = kind.convert(user, opts)
        part["where"] = user.where()
        parts[user.name] = part
    names = sorted(parts)
    ordered = [parts.pop(n) for n in names]
    counts = np.array([len(p["y"]) for p in ordered], dtype=np.int64)
    arrays, vocab = kind.finish(ordered, opts, vocab)
    offsets = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    arrays["sample_offsets"] = offsets
    arrays["names"], arrays["name_offsets"] = cache.encode_strings(names)
    if vocab is not None:
        arrays["vocab"], arrays["vocab_offsets"] = cache.encode_strings(vocab)
    arrays["client_crc"] = cache.client_checksums(arrays, offsets)
    return arrays


class LeafSplit:
    """One split of one LEAF data set: its users, their sample counts and per-client Datasets.

    Clients are numbered 0..len-1 in the sorted order of user names. A cache-backed split
    checks each client's checksum when it reads the client; on a mismatch it rebuilds the cache
    from the JSON files once (`reopen`) and reads the client again.
    """

    def __init__(
        self,
        name: str,
        split: str,
        arrays: Arrays,
        opts: Options,
        *,
        path: Path | None = None,
        reopen: Callable[[], LeafSplit] | None = None,
    ) -> None:
        self.name, self.split, self.options, self.path = name, split, opts, path
        self.arrays = arrays
        self._reopen = reopen

    @property
    def source(self) -> str:
        """Return "cache" when the arrays are mapped from a cache file, else "json"."""
        return "json" if self.path is None else "cache"

    def __len__(self) -> int:
        return len(self.arrays["sample_offsets"]) - 1

    @cached_property
    def users(self) -> list[str]:
        """Return the user names, index = client id."""
        return cache.decode_strings(self.arrays["names"], self.arrays["name_offsets"])

    def user(self, client_id: int) -> str:
        """Return the user name of one client (without decoding all names)."""
        if "users" in self.__dict__:
            return self.users[client_id]
        a, b = (int(v) for v in self.arrays["name_offsets"][client_id : client_id + 2])
        return self.arrays["names"][a:b].tobytes().decode("utf-8")

    @property
    def num_samples(self) -> list[int]:
        """Return the number of samples of each client."""
        return np.diff(self.arrays["sample_offsets"]).tolist()

    @cached_property
    def vocab(self) -> list[str] | None:
        """Return the token vocabulary (Sent140, Reddit; index = token id), else None."""
        if "vocab" not in self.arrays:
            return None
        return cache.decode_strings(self.arrays["vocab"], self.arrays["vocab_offsets"])

    def client_id(self, user: str) -> int:
        """Return the client id of a user name."""
        try:
            return self.users.index(user)
        except ValueError:
            raise KeyError(f"user {user!r} is not in the {self.name} {self.split} split") from None

    def _slices(self, client_id: int) -> Arrays:
        if isinstance(client_id, bool) or not isinstance(client_id, (int, np.integer)):
            raise TypeError(f"client_id must be an int, got {type(client_id).__name__}")
        if not 0 <= client_id < len(self):
            raise IndexError(f"client_id {client_id} out of range: {self.name} {self.split} has {len(self)}")
        begin, end = (int(v) for v in self.arrays["sample_offsets"][client_id : client_id + 2])
        slices = cache.client_slices(self.arrays, begin, end)
        if self.path is not None and cache.client_crc(slices) != int(self.arrays["client_crc"][client_id]):
            raise LeafCacheError(f"{self.path}: data of client {client_id} is corrupt (CRC mismatch)")
        return slices

    def _checked_slices(self, client_id: int) -> Arrays:
        try:
            return self._slices(client_id)
        except LeafCacheError as err:
            if self._reopen is None:
                raise
            log.warning("%s; rebuilding it from the JSON files", err)
            fresh = self._reopen()
            self.arrays, self._reopen = fresh.arrays, None
            for stale in ("users", "vocab"):
                self.__dict__.pop(stale, None)
            return self._slices(client_id)

    def client(self, client_id: int) -> LeafClientDataset:
        """Return client `client_id`'s Dataset (its tensors are copies, not views of the file)."""
        data, targets = kind_of(self.name).tensors(self._checked_slices(client_id), self.options)
        return LeafClientDataset(int(client_id), self.user(int(client_id)), data, targets)

    def data_slices(self) -> list[range]:
        """Return each client's sample indices in `as_tensor_dataset()` (for SubsetSerialTrainer)."""
        return [range(a, b) for a, b in itertools.pairwise(self.arrays["sample_offsets"].tolist())]

    def as_tensor_dataset(self) -> TensorDataset:
        """Return the whole split as one TensorDataset, clients one after another (`data_slices`)."""
        for cid in range(len(self)):
            self._checked_slices(cid)
        whole = cache.client_slices(self.arrays, 0, len(self.arrays["y"]))
        return TensorDataset(*kind_of(self.name).tensors(whole, self.options))

    def labels(self, client_id: int | None = None) -> np.ndarray:
        """Return the labels of one client, or of all clients (no checksum: for statistics)."""
        y = self.arrays["y"]
        if client_id is not None:
            y = y[slice(*self.arrays["sample_offsets"][client_id : client_id + 2])]
        return np.asarray(y)


def cache_path(root: str | Path, name: str, split: str, cache_dir: str | Path | None = None) -> Path:
    """Return where a split's cache file lives: `root/name/data/<split>.fastfl-leaf` by default."""
    folder = Path(cache_dir) if cache_dir is not None else Path(root) / name / "data"
    return folder / f"{split}.fastfl-leaf"


def _extra(name: str, split: str, opts: Options) -> dict[str, Any]:
    extra: dict[str, Any] = {"name": name, "split": split, "format": cache.VERSION}
    if name == "celeba" and opts.image_dir is not None:
        folder = opts.image_dir.resolve()
        mtime = folder.stat().st_mtime_ns if folder.is_dir() else None
        extra.update(image_dir=str(folder), image_dir_mtime=mtime, image_size=opts.image_size)
    return extra


def open_leaf(
    name: str,
    root: str | Path,
    split: str = "train",
    *,
    use_cache: bool = True,
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
    image_dir: str | Path | None = None,
    image_size: int = 84,
    max_len: int = 25,
    max_vocab: int | None = None,
) -> LeafSplit:
    """Open one split of a LEAF data set, from its cache when valid, else from LEAF's JSON.

    Args:
        name: femnist, shakespeare, sent140, celeba, reddit or synthetic.
        root: the folder holding `<name>/data/train/*.json` and `<name>/data/test/*.json`.
        split: "train" or "test".
        use_cache: read and write the binary cache (False: parse the JSON, keep arrays in memory).
        cache_dir: folder of the cache files (default `root/<name>/data`).
        rebuild: rebuild the cache even if it looks valid.
        image_dir: CelebA's image folder (default `root/celeba/data/raw/img_align_celeba`).
        image_size: CelebA images are resized to image_size × image_size (LEAF's 84).
        max_len: Sent140 token sequences are padded or cut to this length (LEAF's 25).
        max_vocab: Sent140/Reddit token ids at or above this become `<UNK>` (None: keep all).

    Raises:
        LeafDataMissingError: the JSON folder is missing; the message says where files go.
        LeafFormatError: a JSON file breaks LEAF's layout; the message names file and user.
    """
    check_name(name)
    check_split(split)
    if image_dir is None and name == "celeba":
        image_dir = Path(root) / "celeba" / "data" / "raw" / "img_align_celeba"
    opts = Options(Path(image_dir) if image_dir is not None else None, image_size, max_len, max_vocab)
    _check_options(opts)
    files = json_files(root, name, split)
    if opts.image_dir is not None and not opts.image_dir.is_dir():
        raise LeafDataMissingError(
            f"no CelebA images: {opts.image_dir} is not a folder. Put LEAF's img_align_celeba images "
            "there (LEAF keeps them in data/celeba/data/raw/img_align_celeba) or pass image_dir="
        )
    vocab_split = None
    if kind_of(name).uses_vocab and split == "test":
        vocab_split = open_leaf(
            name, root, "train", use_cache=use_cache, cache_dir=cache_dir, rebuild=rebuild
        )
    if not use_cache:
        return LeafSplit(
            name, split, build_arrays(name, files, opts, vocab_split and vocab_split.vocab), opts
        )
    path = cache_path(root, name, split, cache_dir)
    sources = files + (json_files(root, name, "train") if vocab_split is not None else [])
    fp = fingerprint(sources, _extra(name, split, opts))
    reopen = functools.partial(_rebuild, name, split, files, opts, vocab_split, path, fp)
    if not rebuild:
        try:
            return LeafSplit(name, split, cache.read(path, fp), opts, path=path, reopen=reopen)
        except LeafCacheError as err:
            log.info("building the LEAF cache: %s", err)
    return reopen()


def _rebuild(
    name: str, split: str, files: list[Path], opts: Options, vocab: LeafSplit | None, path: Path, fp: bytes
) -> LeafSplit:
    arrays = build_arrays(name, files, opts, vocab and vocab.vocab)
    try:
        cache.write(path, arrays, fp)
    except OSError as err:
        log.warning(
            "cannot write the LEAF cache %s (%s): keeping the data in memory; pass cache_dir=", path, err
        )
        return LeafSplit(name, split, arrays, opts)
    return LeafSplit(name, split, cache.read(path, fp), opts, path=path)


def _check_options(opts: Options) -> None:
    for what, value, low in (("image_size", opts.image_size, 1), ("max_len", opts.max_len, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{what} must be a positive int, got {value!r}")
    if opts.max_vocab is not None and (not isinstance(opts.max_vocab, int) or opts.max_vocab < 2):
        raise ValueError(
            f"max_vocab must be None or an int >= 2 (room for <PAD> and <UNK>), got {opts.max_vocab!r}"
        )


def _test_client(train: LeafSplit, test: LeafSplit, client_id: int) -> LeafClientDataset:
    user = train.users[client_id]
    if user in test.users:
        return test.client(test.client_id(user))
    if not set(train.users) & set(test.users) and client_id < len(test):
        return test.client(client_id)  # LEAF's `-t user` split: disjoint users, pair by id as FedLab does
    raise KeyError(f"user {user!r} (client {client_id}) has train data but no test data in {test.name}")


def get_LEAF_dataloader(
    dataset: str,
    client_id: int = 0,
    batch_size: int = 128,
    *,
    data_root: str | Path | None = None,
    shuffle: bool = False,
    **options: Any,
) -> tuple[DataLoader, DataLoader]:
    """Return client `client_id`'s train and test DataLoaders, as FedLab's benchmark function does.

    The train loader has `batch_size` (no shuffling unless asked, no dropped batch); the test
    loader serves the client's whole test set as one batch. The test client is the same user.

    Args:
        dataset: the LEAF data set name.
        client_id: the client's id in the train split (users in sorted order).
        batch_size: train batch size.
        data_root: the folder holding `<dataset>/data/...`; default `$FASTFL_LEAF_ROOT` or `./datasets`.
        shuffle: shuffle the train loader every epoch.
        **options: passed to `open_leaf` (cache_dir, rebuild, image_dir, max_len, ...).

    Example:
        >>> train, test = get_LEAF_dataloader("femnist", client_id=3, data_root="leaf_data")
    """
    root = data_root if data_root is not None else os.environ.get("FASTFL_LEAF_ROOT", "datasets")
    train = open_leaf(dataset, root, "train", **options)
    test = open_leaf(dataset, root, "test", **options)
    trainset = train.client(client_id)
    testset = _test_client(train, test, client_id)
    trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=shuffle, drop_last=False)
    testloader = DataLoader(testset, batch_size=max(len(testset), 1), shuffle=False)
    return trainloader, testloader

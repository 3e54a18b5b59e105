"""Vision data sets: thin wrappers over torchvision (optional), plus numpy readers of its on-disk files.

torchvision is an optional extra (``pip install fastfl[vision]``, with the torchvision build
that matches your torch). It is imported only when a wrapper is called. fastfl never downloads:
with ``download=False`` (the default) missing files give a message that says where they belong.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np

from fastfl.utils.dataset._common import DatasetFileError, OptionalDependencyError, PartitionError

# name -> (torchvision class, sub-directory, train files, test files)
_LAYOUT: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "mnist": (
        "MNIST",
        "MNIST/raw",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ),
    "fmnist": (
        "FashionMNIST",
        "FashionMNIST/raw",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ),
    "cifar10": (
        "CIFAR10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
    ),
    "cifar100": ("CIFAR100", "cifar-100-python", ("train",), ("test",)),
    "svhn": ("SVHN", "", ("train_32x32.mat",), ("test_32x32.mat",)),
}
_ALIASES = {"fashionmnist": "fmnist", "fashion-mnist": "fmnist"}
VISION_DATASETS = tuple(_LAYOUT)


def _canonical(name: str) -> str:
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in _LAYOUT:
        raise PartitionError(f"unknown vision data set {name!r}; choose one of {list(VISION_DATASETS)}")
    return key


def vision_files(name: str, root: str | os.PathLike[str], train: bool = True) -> list[str]:
    """Paths of the files torchvision reads for data set ``name`` (split ``train`` or test)."""
    _, sub, train_files, test_files = _LAYOUT[_canonical(name)]
    return [os.path.join(os.fspath(root), sub, f) for f in (train_files if train else test_files)]


def _require_files(name: str, root: str | os.PathLike[str], train: bool) -> None:
    missing = [p for p in vision_files(name, root, train) if not os.path.isfile(p)]
    if missing:
        raise DatasetFileError(
            f"{name} ({'train' if train else 'test'}) is not in {os.fspath(root)}: missing {missing[0]}"
            f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}. Download it where a "
            f"network is available (torchvision's download=True), then copy the files there"
        )


def load_vision_dataset(
    name: str,
    root: str | os.PathLike[str],
    train: bool = True,
    transform: Any = None,
    target_transform: Any = None,
    download: bool = False,
) -> Any:
    """Return torchvision's data set ``name`` ("mnist", "fmnist", "cifar10", "cifar100", "svhn").

    Args:
        name: data set name.
        root: torchvision root directory.
        train: training split (SVHN: "train", else "test").
        transform: torchvision transform of the images.
        target_transform: transform of the labels.
        download: let torchvision download missing files.
    """
    key = _canonical(name)
    if not download:
        _require_files(key, root, train)
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise OptionalDependencyError(
            f"load_vision_dataset({name!r}) needs torchvision: pip install fastfl[vision] (install the "
            f"torchvision release built for your torch), or read MNIST/CIFAR files without it with "
            f"fastfl.utils.dataset.read_vision_arrays"
        ) from exc
    cls = getattr(tvd, _LAYOUT[key][0])
    common = {"transform": transform, "target_transform": target_transform, "download": download}
    if key == "svhn":
        return cls(os.fspath(root), split="train" if train else "test", **common)
    return cls(os.fspath(root), train=train, **common)


def vision_targets(dataset: Any) -> np.ndarray:
    """The labels of a torchvision data set as an int64 array (``targets``, or SVHN's ``labels``)."""
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = getattr(dataset, "labels", None)
    if labels is None:
        raise PartitionError(f"{type(dataset).__name__} has neither .targets nor .labels")
    return np.asarray(labels, dtype=np.int64)


_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (MNIST's format): 2 zero bytes, a type code, the rank, big-endian sizes, data."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetFileError(f"{path} is not an IDX file (bad magic number)")
    rank = raw[3]
    shape = tuple(np.frombuffer(raw, dtype=">i4", count=rank, offset=4).tolist())
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = 4 + 4 * rank + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetFileError(f"{path} has {len(raw)} bytes, its header says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * rank).reshape(shape).astype(dtype.newbyteorder("="))


def _read_cifar(paths: list[str], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in paths:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # CIFAR's own pickles: only read files you trust
        if b"data" not in batch or label_key not in batch:
            raise DatasetFileError(f"{path} is not a CIFAR batch (no {label_key!r})")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(images).transpose(0, 2, 3, 1), np.concatenate(labels)


def read_vision_arrays(
    name: str, root: str | os.PathLike[str], train: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST, FashionMNIST, CIFAR10 or CIFAR100 from torchvision's files, without torchvision.

    Returns:
        ``(images, targets)``: uint8 images as torchvision stores them (``(N, 28, 28)`` or
        ``(N, 32, 32, 3)``) and int64 labels.
    """
    key = _canonical(name)
    if key == "svhn":
        raise PartitionError("SVHN is stored as MATLAB files: use load_vision_dataset('svhn', ...)")
    _require_files(key, root, train)
    paths = vision_files(key, root, train)
    if key in ("mnist", "fmnist"):
        images, labels = read_idx(paths[0]), read_idx(paths[1]).astype(np.int64)
        if images.shape[0] != labels.shape[0]:
            raise DatasetFileError(f"{paths[0]} has {images.shape[0]} images but {labels.shape[0]} labels")
        return images, labels
    return _read_cifar(paths, b"labels" if key == "cifar10" else b"fine_labels")

"""LIBSVM-format readers (sparse rows, no scipy) and the Adult, Covtype and RCV1 data sets built on them."""

from __future__ import annotations

import bz2
import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from fastfl.utils.dataset._common import DatasetFileError, PartitionError, check_int


@dataclass(frozen=True)
class SparseRows:
    """Rows of a sparse matrix in CSR form: row i is ``values[indptr[i]:indptr[i+1]]`` at ``indices``."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    num_features: int

    def __len__(self) -> int:
        """Number of rows."""
        return int(self.indptr.shape[0] - 1)

    def row(self, i: int) -> np.ndarray:
        """Row ``i`` as a dense float32 vector."""
        dense = np.zeros(self.num_features, dtype=np.float32)
        lo, hi = self.indptr[i], self.indptr[i + 1]
        dense[self.indices[lo:hi]] = self.values[lo:hi]
        return dense

    def to_dense(self) -> np.ndarray:
        """All rows as a dense float32 ``(rows, num_features)`` array (mind the memory for RCV1)."""
        dense = np.zeros((len(self), self.num_features), dtype=np.float32)
        rows = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        dense[rows, self.indices] = self.values
        return dense

    def take(self, rows: np.ndarray) -> SparseRows:
        """The given rows, in that order."""
        lengths = np.diff(self.indptr)[rows]
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        starts = self.indptr[rows]
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return SparseRows(indptr, self.indices[pos], self.values[pos], self.num_features)


def _read_bytes(path: str) -> bytes:
    opener = bz2.open if path.endswith(".bz2") else open
    with opener(path, "rb") as f:
        return f.read()


def load_libsvm(
    path: str | os.PathLike[str], num_features: int | None = None
) -> tuple[SparseRows, np.ndarray]:
    """Read a LIBSVM/SVMlight text file (``label idx:value ...``, 1-based indices; ``.bz2`` works too).

    Args:
        path: the file.
        num_features: width of the rows; default the largest index in the file.

    Returns:
        ``(rows, labels)``: a :class:`SparseRows` and the float64 labels as written.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetFileError(f"no LIBSVM file at {path}")
    labels, bodies = [], []
    for number, raw in enumerate(_read_bytes(path).splitlines(), 1):
        line = raw.split(b"#", 1)[0].strip()
        if not line:
            continue
        head, _, body = line.partition(b" ")
        try:
            labels.append(float(head))
        except ValueError:
            raise DatasetFileError(f"{path}:{number}: bad label {head[:20]!r}") from None
        bodies.append(body)
    counts = np.array([b.count(b":") for b in bodies], dtype=np.int64)
    joined = b" ".join(bodies)
    tokens = joined.replace(b":", b" ").split()
    if len(joined.split()) != counts.sum() or len(tokens) != 2 * counts.sum():
        raise DatasetFileError(f"{path}: features must be written idx:value without spaces")
    try:
        pairs = np.array(tokens, dtype=np.float64).reshape(-1, 2)
    except ValueError:
        raise DatasetFileError(f"{path}: a feature index or value is not a number") from None
    index = pairs[:, 0]
    if index.size and (np.any(index != np.round(index)) or index.min() < 1):
        raise DatasetFileError(f"{path}: feature indices must be integers >= 1 (LIBSVM is 1-based)")
    width = int(index.max()) if index.size else 0
    if num_features is not None:
        if width > check_int("num_features", num_features, 1):
            raise DatasetFileError(f"{path}: feature index {width} exceeds num_features={num_features}")
        width = num_features
    indptr = np.concatenate(([0], np.cumsum(counts)))
    rows = SparseRows(indptr, index.astype(np.int64) - 1, pairs[:, 1].astype(np.float32), width)
    return rows, np.asarray(labels, dtype=np.float64)


def binary_labels(labels: np.ndarray, negative: float, positive: float) -> np.ndarray:
    """Map the two LIBSVM label values to 0 (``negative``) and 1 (``positive``); anything else is an error."""
    bad = ~np.isin(labels, (negative, positive))
    if np.any(bad):
        raise DatasetFileError(f"expected labels {negative} and {positive}, found {labels[bad][0]}")
    return (labels == positive).astype(np.int64)


class LIBSVMDataset(Dataset):
    """A binary LIBSVM data set: ``data`` (:class:`SparseRows`), ``targets`` (0/1), dense rows on access."""

    train_files: ClassVar[tuple[str, ...]] = ()
    test_files: ClassVar[tuple[str, ...]] = ()
    num_features: ClassVar[int] = 0
    label_values: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    url = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary.html"

    def __init__(self, root: str | os.PathLike[str], train: bool = True) -> None:
        path = self._find(os.fspath(root), "train" if train else "test")
        rows, raw = load_libsvm(path, self.num_features)
        self.data, self.targets, self.train = rows, binary_labels(raw, *self.label_values), train

    def _find(self, root: str, split: str) -> str:
        names = self.train_files if split == "train" else self.test_files
        for name in names:
            for candidate in (name, name + ".bz2"):
                if os.path.isfile(os.path.join(root, candidate)):
                    return os.path.join(root, candidate)
        raise DatasetFileError(
            f"{type(self).__name__}: none of {list(names)} (or .bz2) found in {root}; download it from "
            f"{self.url} into that directory (fastfl does not download)"
        )

    def __len__(self) -> int:
        """Number of samples."""
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """``(dense features, label)`` of sample ``index``."""
        return torch.from_numpy(self.data.row(index)), int(self.targets[index])


class Adult(LIBSVMDataset):
    """Adult (LIBSVM ``a9a`` / ``a9a.t``): 123 binary features, income above 50K is class 1."""

    train_files = ("a9a",)
    test_files = ("a9a.t",)
    num_features = 123


class RCV1(LIBSVMDataset):
    """RCV1 (LIBSVM ``rcv1_train.binary`` / ``rcv1_test.binary``): 47236 tf-idf features."""

    train_files = ("rcv1_train.binary",)
    test_files = ("rcv1_test.binary",)
    num_features = 47236


class Covtype(LIBSVMDataset):
    """Covtype (LIBSVM ``covtype.libsvm.binary``): 54 features, classes 1/2 become 0/1.

    The file has no test split: a seeded random ``train_ratio`` share of the rows is the
    training split and the rest the test split.

    Args:
        root: directory holding the file.
        train: training or test split.
        train_ratio: share of rows in the training split.
        seed: seed of the split.
    """

    train_files = ("covtype.libsvm.binary", "covtype.binary")
    num_features = 54
    label_values = (1.0, 2.0)

    def __init__(
        self, root: str | os.PathLike[str], train: bool = True, train_ratio: float = 0.75, seed: int = 0
    ) -> None:
        if not 0.0 < train_ratio < 1.0:
            raise PartitionError(f"train_ratio must lie in (0, 1), got {train_ratio}")
        rows, raw = load_libsvm(self._find(os.fspath(root), "train"), self.num_features)
        perm = np.random.default_rng(check_int("seed", seed)).permutation(len(rows))
        cut = round(train_ratio * len(rows))
        chosen = np.sort(perm[:cut] if train else perm[cut:])
        self.data = rows.take(chosen)
        self.targets = binary_labels(raw[chosen], *self.label_values)
        self.train = train

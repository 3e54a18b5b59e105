from __future__ import annotations

import bz2
import pickle

import numpy as np
import pytest
import torch

from fastfl.utils.dataset import (
    FCUBE,
    RCV1,
    Adult,
    Covtype,
    DatasetFileError,
    FCUBEPartitioner,
    OptionalDependencyError,
    PartitionError,
    SyntheticDataset,
    generate_fcube,
    generate_synthetic,
    load_libsvm,
    load_vision_dataset,
    read_idx,
    read_vision_arrays,
    vision_targets,
)
from fastfl.utils.dataset.vision import vision_files


def test_fcube_generator_balanced_and_labelled_by_x1():
    x, y = generate_fcube(4000, rng=0)
    assert x.shape == (4000, 3) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.all((x[:, 0] > 0) == (y == 0)) and np.all(np.abs(x) <= 1)
    assert np.bincount(y).tolist() == [2000, 2000]
    octant = (x > 0) @ np.array([4, 2, 1])
    assert np.bincount(octant, minlength=8).tolist() == [500] * 8
    assert [len(v) for v in FCUBEPartitioner(x, "synthetic").client_dict.values()] == [1000] * 4
    assert not np.array_equal(x, generate_fcube(4000, rng=1)[0])


def test_fcube_dataset():
    train, test = FCUBE(train=True), FCUBE(train=False)
    assert len(train) == 4000 and len(test) == 1000
    point, label = train[0]
    assert isinstance(point, torch.Tensor) and point.shape == (3,) and label in (0, 1)
    assert np.array_equal(FCUBE(seed=0).data, train.data) and not np.array_equal(
        FCUBE(seed=1).data, train.data
    )


def test_synthetic_generator():
    parts = generate_synthetic(
        5, num_classes=4, dim=8, alpha=0.5, beta=0.5, num_samples=[30, 40, 50, 60, 70], rng=0
    )
    assert [p[0].shape for p in parts] == [(n, 8) for n in (30, 40, 50, 60, 70)]
    assert all(p[1].max() < 4 and p[1].dtype == np.int64 for p in parts)
    again = generate_synthetic(
        5, num_classes=4, dim=8, alpha=0.5, beta=0.5, num_samples=[30, 40, 50, 60, 70], rng=0
    )
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(parts, again, strict=True))
    sizes = [p[1].size for p in generate_synthetic(20, rng=1)]
    assert min(sizes) >= 50 and len(set(sizes)) > 1  # FedProx's log-normal sizes
    # Non-IID clients have different input means; IID ones share one distribution.
    noniid = generate_synthetic(2, alpha=1, beta=1, num_samples=2000, rng=2)
    iid = generate_synthetic(2, iid=True, num_samples=2000, rng=2)
    gap = lambda ps: np.abs(ps[0][0].mean(0) - ps[1][0].mean(0)).mean()
    assert gap(noniid) > 5 * gap(iid)
    with pytest.raises(PartitionError, match="alpha"):
        generate_synthetic(2, alpha=-1)


def test_synthetic_dataset_client_dict():
    ds = SyntheticDataset(4, seed=0, num_samples=10, dim=5)
    assert len(ds) == 40 and ds.client_dict[3].tolist() == list(range(30, 40))
    x, y = ds[0]
    assert x.shape == (5,) and isinstance(y, int)


LIBSVM_TEXT = b"""+1 1:0.5 3:1
-1 2:2.5   # comment
+1 3:-1 4:7

-1
"""


def test_load_libsvm(tmp_path):
    path = tmp_path / "small.libsvm"
    path.write_bytes(LIBSVM_TEXT)
    rows, labels = load_libsvm(path)
    assert labels.tolist() == [1, -1, 1, -1] and rows.num_features == 4 and len(rows) == 4
    dense = rows.to_dense()
    assert dense.tolist() == [[0.5, 0, 1, 0], [0, 2.5, 0, 0], [0, 0, -1, 7], [0, 0, 0, 0]]
    assert np.array_equal(rows.row(2), dense[2])
    assert np.array_equal(rows.take(np.array([2, 0])).to_dense(), dense[[2, 0]])
    assert load_libsvm(path, num_features=10)[0].to_dense().shape == (4, 10)
    bz = tmp_path / "small.libsvm.bz2"
    bz.write_bytes(bz2.compress(LIBSVM_TEXT))
    assert np.array_equal(load_libsvm(bz)[0].to_dense(), dense)


@pytest.mark.parametrize(
    "text,match",
    [
        (b"abc 1:2\n", "bad label"),
        (b"1 0:2\n", "1-based"),
        (b"1 1:x\n", "not a number"),
        (b"1 1 : 2\n", "idx:value"),
    ],
)
def test_load_libsvm_bad_files(tmp_path, text, match):
    path = tmp_path / "bad"
    path.write_bytes(text)
    with pytest.raises(DatasetFileError, match=match):
        load_libsvm(path)
    with pytest.raises(DatasetFileError, match="no LIBSVM file"):
        load_libsvm(tmp_path / "missing")


def test_adult_rcv1_covtype(tmp_path):
    (tmp_path / "a9a").write_bytes(b"-1 3:1 123:1\n+1 1:1\n")
    adult = Adult(tmp_path)
    assert adult.targets.tolist() == [0, 1] and adult[0][0].shape == (123,) and adult[0][0][122] == 1
    with pytest.raises(DatasetFileError, match=r"a9a\.t"):
        Adult(tmp_path, train=False)
    (tmp_path / "rcv1_train.binary").write_bytes(b"1 47236:0.1\n-1 5:0.2\n")
    assert RCV1(tmp_path).targets.tolist() == [1, 0]
    lines = b"".join(b"%d 1:%d 54:1\n" % (1 + i % 2, i) for i in range(20))
    (tmp_path / "covtype.libsvm.binary").write_bytes(lines)
    train, test = Covtype(tmp_path, train=True), Covtype(tmp_path, train=False)
    assert len(train) == 15 and len(test) == 5
    ids = np.concatenate([train.data.to_dense()[:, 0], test.data.to_dense()[:, 0]])
    assert sorted(ids.tolist()) == list(range(20))
    assert all(t == (int(r) % 2) for r, t in zip(train.data.to_dense()[:, 0], train.targets, strict=True))
    (tmp_path / "a9a").write_bytes(b"3 1:1\n")
    with pytest.raises(DatasetFileError, match="expected labels"):
        Adult(tmp_path)


def _write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def _write_mnist(root, n=6):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(n * 28 * 28, dtype=np.uint8).reshape(n, 28, 28)
    _write_idx(raw / "train-images-idx3-ubyte", images, 0x08)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10, 0x08)
    return images


def test_read_idx_and_mnist_arrays(tmp_path):
    images = _write_mnist(tmp_path)
    x, y = read_vision_arrays("mnist", tmp_path)
    assert np.array_equal(x, images) and y.tolist() == [0, 1, 2, 3, 4, 5] and y.dtype == np.int64
    floats = tmp_path / "f.idx"
    _write_idx(floats, np.array([[1.5, -2.0]], dtype=np.float32), 0x0D)
    assert read_idx(floats).tolist() == [[1.5, -2.0]]
    floats.write_bytes(floats.read_bytes()[:-1])
    with pytest.raises(DatasetFileError, match="header says"):
        read_idx(floats)


def test_read_cifar_arrays(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    with open(root / "train", "wb") as f:
        pickle.dump({b"data": data, b"fine_labels": [7, 99]}, f)
    x, y = read_vision_arrays("cifar100", tmp_path)
    assert x.shape == (2, 32, 32, 3) and y.tolist() == [7, 99]
    assert x[0, 0, 0].tolist() == [data[0, 0], data[0, 1024], data[0, 2048]]


def test_vision_pure_python_parts(tmp_path):
    with pytest.raises(PartitionError, match="unknown vision data set"):
        load_vision_dataset("imagenet", tmp_path)
    with pytest.raises(DatasetFileError, match="Download it where a network is available"):
        load_vision_dataset("cifar10", tmp_path)
    assert vision_files("FashionMNIST", "r", train=False)[0].endswith(
        "FashionMNIST/raw/t10k-images-idx3-ubyte"
    )
    with pytest.raises(PartitionError, match="MATLAB"):
        read_vision_arrays("svhn", tmp_path)

    class Labelled:
        labels = np.array([3, 1])

    assert vision_targets(Labelled()).tolist() == [3, 1]


def test_vision_without_torchvision(tmp_path, monkeypatch):
    import sys

    _write_mnist(tmp_path)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(OptionalDependencyError, match=r"fastfl\[vision\]"):
        load_vision_dataset("mnist", tmp_path)


@pytest.mark.vision
def test_vision_with_torchvision(tmp_path):
    pytest.importorskip("torchvision")
    images = _write_mnist(tmp_path)
    ds = load_vision_dataset("mnist", tmp_path)
    assert len(ds) == 6 and vision_targets(ds).tolist() == [0, 1, 2, 3, 4, 5]
    assert np.array_equal(np.asarray(ds[1][0]), images[1])

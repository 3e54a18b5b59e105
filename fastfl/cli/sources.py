"""Data sources of `fastfl run`: built-in sets, generated data, LEAF, the user's file or callable."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from fastfl.errors import ConfigError

__all__ = ["VISION", "Data", "check_source", "load_data"]

VISION = ("mnist", "fmnist", "cifar10", "cifar100")
BUILTIN = ("digits", "synthetic", "fedprox-synthetic", "fcube", "leaf", "file", *VISION)


@dataclass
class Data:
    """Train and test sets as TensorDatasets; `slices` is the data's own per-client split (or None)."""

    train: TensorDataset
    test: TensorDataset
    slices: list[list[int]] | None = None

    @property
    def num_classes(self) -> int:
        """Largest label + 1 over train and test."""
        return int(max(self.train.tensors[1].max(), self.test.tensors[1].max())) + 1


def import_object(spec: str, key: str) -> Any:
    """Import ``module:attribute`` (ConfigError naming `key` when it cannot be found)."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{key}: cannot import module {module_name!r} ({err})") from err
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{key}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def check_source(data: dict[str, Any]) -> None:
    """Check the data source's name and that its files exist (before anything is written)."""
    name, path = data["name"], data["path"]
    if ":" in name:
        if not callable(import_object(name, "data.name")):
            raise ConfigError(f"data.name: {name!r} is not callable")
        return
    if name not in BUILTIN:
        raise ConfigError(
            f"data.name: unknown data source {name!r}; accepted: {', '.join(BUILTIN)}, module:function"
        )
    if name in ("file", "leaf", *VISION):
        if not path:
            raise ConfigError(f"data.path: data.name = {name!r} needs data.path")
        if not Path(path).exists():
            raise ConfigError(f"data.path: {path} does not exist")
    if name == "file" and Path(path).suffix not in (".npz", ".pt"):
        raise ConfigError(f"data.path: {path}: expected a .npz or .pt file of per-client arrays")


def _split(
    x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int
) -> tuple[TensorDataset, TensorDataset]:
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(y) * fraction)
    test, train = perm[:n_test], perm[n_test:]
    return TensorDataset(x[train], y[train]), TensorDataset(x[test], y[test])


def _digits(d: dict[str, Any], seed: int) -> Data:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    return Data(*_split(x, torch.tensor(bunch.target, dtype=torch.int64), d["test_fraction"], seed))


def _synthetic(d: dict[str, Any], seed: int) -> Data:
    g = torch.Generator().manual_seed(seed + 12345)
    centers = torch.randn(d["classes"], d["dim"], generator=g)
    y = torch.randint(0, d["classes"], (d["samples"],), generator=g)
    x = centers[y] + 2.0 * torch.randn(d["samples"], d["dim"], generator=g)
    return Data(*_split(x, y, d["test_fraction"], seed))


def _fcube(d: dict[str, Any], seed: int) -> Data:
    from fastfl.utils.dataset import generate_fcube

    x, y = generate_fcube(d["samples"], rng=seed)
    return Data(*_split(torch.from_numpy(x), torch.from_numpy(y), d["test_fraction"], seed))


def as_inputs(x: Any) -> torch.Tensor:
    """Inputs as a tensor: floating and uint8 (images) become float32, other integers int64 (token ids)."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    if t.is_floating_point() or t.dtype in (torch.uint8, torch.bool):
        return t.float()
    return t.long()


def _per_client(
    parts: list[tuple[Any, Any]], test: tuple[Any, Any] | None, fraction: float, seed: int
) -> Data:
    """Clients' (x, y) arrays -> one train set with natural slices; test held out per client if absent."""
    xs, ys, tx, ty, slices, start = [], [], [], [], [], 0
    g = torch.Generator().manual_seed(seed)
    for x, y in parts:
        x, y = as_inputs(x), torch.as_tensor(np.asarray(y)).long()
        if len(x) != len(y):
            raise ConfigError(f"data: a client has {len(x)} inputs but {len(y)} labels")
        if test is None and fraction > 0 and len(y) > 1:
            perm = torch.randperm(len(y), generator=g)
            n_test = min(int(len(y) * fraction), len(y) - 1)
            tx.append(x[perm[:n_test]])
            ty.append(y[perm[:n_test]])
            x, y = x[perm[n_test:]], y[perm[n_test:]]
        xs.append(x)
        ys.append(y)
        slices.append(list(range(start, start + len(y))))
        start += len(y)
    train = TensorDataset(torch.cat(xs), torch.cat(ys))
    if test is not None:
        test_set = TensorDataset(as_inputs(test[0]), torch.as_tensor(np.asarray(test[1])).long())
    elif tx:
        test_set = TensorDataset(torch.cat(tx), torch.cat(ty))
    else:
        test_set = train
    return Data(train, test_set, slices)


def _fedprox(d: dict[str, Any], seed: int, clients: int) -> Data:
    from fastfl.utils.dataset import generate_synthetic

    parts = generate_synthetic(clients, d["classes"], d["dim"], d["alpha"], d["beta"], rng=seed)
    return _per_client(parts, None, d["test_fraction"], seed)


def _leaf(d: dict[str, Any], seed: int) -> Data:
    from fastfl.utils.dataset.leaf import open_leaf

    train = open_leaf(d["leaf_name"], d["path"], "train")
    test = open_leaf(d["leaf_name"], d["path"], "test")
    slices = [list(r) for r in train.data_slices()]
    train_set, test_set = train.as_tensor_dataset(), test.as_tensor_dataset()
    x, y = train_set.tensors[:2]
    tx, ty = test_set.tensors[:2]
    return Data(TensorDataset(as_inputs(x), y.long()), TensorDataset(as_inputs(tx), ty.long()), slices)


def _vision(d: dict[str, Any], seed: int) -> Data:
    from fastfl.utils.dataset import read_vision_arrays

    sets = []
    for train in (True, False):
        images, labels = read_vision_arrays(d["name"], d["path"], train=train)
        x = torch.from_numpy(images).float() / 255.0
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()
        sets.append(TensorDataset(x, torch.from_numpy(labels).long()))
    return Data(*sets)


def read_client_file(path: str | Path) -> tuple[list[tuple[Any, Any]], tuple[Any, Any] | None]:
    """Read per-client arrays from ``.npz`` or ``.pt``: keys ``x_0, y_0, x_1, y_1, ...``.

    Optional ``x_test``/``y_test`` give the test set (else `data.test_fraction` of each client's
    samples is held out). A ``.pt`` file may also hold ``{"clients": [(x, y), ...], "test": (x, y)}``.
    Floating and uint8 inputs become float32; other integer inputs (token ids) stay integers.
    """
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                table: dict[str, Any] = {k: f[k] for k in f.files}
        else:
            table = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if path.suffix == ".pt":
            why = "it is read with torch.load(weights_only=True): store torch tensors, or use .npz"
        else:
            why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"data.path: {path}: cannot read it ({why})") from err
    if not isinstance(table, dict):
        raise ConfigError(f"data.path: {path}: expected a dict of arrays, got {type(table).__name__}")
    if "clients" in table:
        parts = [tuple(p) for p in table["clients"]]
    else:
        count = 0
        while f"x_{count}" in table:
            if f"y_{count}" not in table:
                raise ConfigError(f"data.path: {path}: has x_{count} but no y_{count}")
            count += 1
        if count == 0:
            raise ConfigError(
                f"data.path: {path}: no per-client arrays; expected keys x_0, y_0, x_1, y_1, ..."
            )
        parts = [(table[f"x_{k}"], table[f"y_{k}"]) for k in range(count)]
    test = table.get("test")
    if test is None and "x_test" in table:
        test = (table["x_test"], table["y_test"])
    return parts, test


def _callable(d: dict[str, Any], seed: int) -> Data:
    fn: Callable[..., Any] = import_object(d["name"], "data.name")
    result = fn(seed=seed, **d["options"])
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise ConfigError(f"data.name: {d['name']} must return (train, test) or (train, test, client_slices)")
    sets = []
    for label, ds in zip(("train", "test"), result[:2], strict=True):
        if isinstance(ds, TensorDataset):
            x, y = ds.tensors[0], ds.tensors[1]
        else:
            try:
                x = torch.stack([torch.as_tensor(ds[i][0]) for i in range(len(ds))])
                y = torch.as_tensor([int(ds[i][1]) for i in range(len(ds))])
            except Exception as err:
                raise ConfigError(
                    f"data.name: {d['name']}'s {label} set is not a dataset of (x, y): {err}"
                ) from err
        sets.append(TensorDataset(as_inputs(x), y.long()))
    slices = [list(map(int, s)) for s in result[2]] if len(result) == 3 else None
    return Data(sets[0], sets[1], slices)


def load_data(d: dict[str, Any], seed: int, clients: int) -> Data:
    """Build the configured data (``d`` is the ``[data]`` section)."""
    name = d["name"]
    if ":" in name:
        return _callable(d, seed)
    if name == "file":
        parts, test = read_client_file(d["path"])
        return _per_client(parts, test, d["test_fraction"], seed)
    if name == "fedprox-synthetic":
        return _fedprox(d, seed, clients)
    loaders = {"digits": _digits, "synthetic": _synthetic, "fcube": _fcube, "leaf": _leaf}
    return loaders.get(name, _vision)(d, seed)

"""fastfl.utils.functional: FedLab 1.2.1's helpers (meters, evaluation, config, seeds, pickles, reports).

Fidelity rule (docs/compat.md): the numbers these helpers return are FedLab's. `AverageMeter.update(val, n)`
adds `val` and counts `n` as FedLab does (so ``update(correct, batch_size)`` gives the accuracy);
`update_mean(val, n)` records `val` as the mean of `n` items. `evaluate` returns FedLab's (sum of the
batches' mean losses, accuracy); `evaluate_mean` returns the mean loss per sample. Other
differences: `evaluate` restores the model's train/eval modes; `get_best_gpu` raises a clear
error without CUDA and imports NVML only when called.
"""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fastfl.errors import EmptyDataError, InvalidArgumentError, InvalidCountError, MissingEntryError
from fastfl.utils._gpu import DeviceUnavailableError, get_best_gpu
from fastfl.utils._report import partition_report

__all__ = [
    "AverageMeter",
    "DeviceUnavailableError",
    "accuracy",
    "evaluate",
    "evaluate_mean",
    "get_best_gpu",
    "load_dict",
    "partition_report",
    "read_config_from_json",
    "save_dict",
    "setup_seed",
]


class AverageMeter:
    """Running sums of a metric, FedLab 1.2.1's meter: ``avg = sum / count``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget all values."""
        self.val = 0.0
        self.avg = 0.0
        self.sum = 0.0
        self.count = 0.0

    def update(self, val: float, n: float = 1) -> None:
        """FedLab's update: ``sum += val``, ``count += n``, ``avg = sum / count``.

        `val` is a total over `n` items (e.g. the correct predictions of a batch of `n`), so
        `avg` is the per-item mean. To record a per-item mean of `n` items (e.g. a batch's mean
        loss), use `update_mean`.
        """
        self.val = val
        self.sum += val
        self.count += n
        self.avg = self.sum / self.count

    def update_mean(self, val: float, n: float = 1) -> None:
        """Record `val` as the mean of `n` items: ``sum += val·n``, ``count += n``, ``avg = sum / count``.

        Raises:
            ValueError: `n` is negative.
        """
        if n < 0:
            raise InvalidCountError(f"n is {n}; the number of items must be non-negative")
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count if self.count else 0.0


def _batch_loss_sum(loss: Tensor, criterion: Callable[..., Tensor], n: int) -> float:
    """The summed loss of a batch, whatever the criterion's reduction."""
    reduction = getattr(criterion, "reduction", "mean")
    if reduction == "sum":
        return float(loss.item())
    if reduction == "none":
        return float(loss.sum().item())
    return float(loss.item()) * n


def _run_eval(
    model: nn.Module, criterion: Callable[..., Tensor], test_loader: Iterable[tuple[Tensor, Tensor]]
) -> tuple[float, float, int, int]:
    """(sum of batch losses as the criterion returns them, sum of per-sample losses, correct, samples)."""
    modes = [(m, m.training) for m in model.modules()]
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    raw_sum, loss_sum, correct, total = 0.0, 0.0, 0, 0
    model.eval()
    try:
        with torch.no_grad():
            for inputs, labels in test_loader:
                inputs, labels = inputs.to(device), labels.to(device)
                outputs = model(inputs)
                n = int(labels.size(0))
                loss = criterion(outputs, labels)
                raw_sum += float(loss.sum().item()) if loss.dim() else float(loss.item())
                loss_sum += _batch_loss_sum(loss, criterion, n)
                correct += int((outputs.argmax(dim=1) == labels).sum().item())
                total += n
    finally:
        for module, training in modes:
            module.training = training
    if total == 0:
        raise EmptyDataError("test_loader yielded no samples; cannot evaluate on an empty data set")
    return raw_sum, loss_sum, correct, total


def evaluate(
    model: nn.Module, criterion: Callable[..., Tensor], test_loader: Iterable[tuple[Tensor, Tensor]]
) -> tuple[float, float]:
    """FedLab's evaluation: (sum over batches of the criterion's value, accuracy in [0, 1]).

    With a mean-reducing criterion the first number is the sum of the batches' mean losses, as
    FedLab 1.2.1 returns it; `evaluate_mean` gives the mean loss per sample. The model runs in
    eval mode under `torch.no_grad()` on the device of its first parameter; each module's
    train/eval mode is restored afterwards. The prediction is the argmax over dim 1.

    Raises:
        ValueError: the loader yielded no samples.
    """
    raw_sum, _, correct, total = _run_eval(model, criterion, test_loader)
    return raw_sum, correct / total


def evaluate_mean(
    model: nn.Module, criterion: Callable[..., Tensor], test_loader: Iterable[tuple[Tensor, Tensor]]
) -> tuple[float, float]:
    """Return (mean loss per sample, accuracy in [0, 1]) of `model` over `test_loader`.

    A criterion with `reduction="sum"` or `"none"` is handled; any other criterion is taken to
    return the batch mean. Otherwise as `evaluate`.

    Raises:
        ValueError: the loader yielded no samples.
    """
    _, loss_sum, correct, total = _run_eval(model, criterion, test_loader)
    return loss_sum / total, correct / total


def accuracy(output: Tensor, target: Tensor, topk: Sequence[int] = (1,)) -> list[Tensor]:
    """Return the top-k accuracy for each k in `topk`, each as a 1-element float tensor.

    Each value is the fraction of samples whose target is among the k highest scores of `output`
    (shape batch × classes).

    Raises:
        ValueError: shapes do not match, the batch is empty, or k exceeds the class count.
    """
    if output.dim() != 2 or target.dim() != 1 or output.size(0) != target.size(0):
        raise InvalidArgumentError(
            f"output must be (batch, classes) and target (batch,); got {tuple(output.shape)} "
            f"and {tuple(target.shape)}"
        )
    n, classes = output.shape
    if n == 0:
        raise InvalidArgumentError("the batch is empty; accuracy needs at least one sample")
    maxk = max(topk)
    if maxk > classes or min(topk) < 1:
        raise InvalidArgumentError(f"topk {tuple(topk)} must lie in 1..{classes} (the number of classes)")
    top = output.topk(maxk, dim=1).indices
    hits = top == target.view(-1, 1)
    return [hits[:, :k].sum().to(torch.float32).reshape(1) * (1.0 / n) for k in topk]


def read_config_from_json(json_file: str, user_name: str) -> tuple[Any, Any, Any, Any]:
    """Return (ip, port, world_size, rank) of `user_name` in a JSON file of per-user configs.

    Values keep their JSON types (FedLab's test data has the port as a string).

    Raises:
        KeyError: the file has no entry for `user_name`, or the entry lacks a field.
    """
    with open(json_file) as fh:
        config = json.load(fh)
    if user_name not in config:
        raise MissingEntryError(f"{json_file} has no entry {user_name!r}; it has {sorted(config)}")
    entry = config[user_name]
    missing = [k for k in ("ip", "port", "world_size", "rank") if k not in entry]
    if missing:
        raise MissingEntryError(f"entry {user_name!r} of {json_file} lacks {', '.join(missing)}")
    return entry["ip"], entry["port"], entry["world_size"], entry["rank"]


def save_dict(obj: Any, path: str) -> None:
    """Pickle `obj` to `path` (binary)."""
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def load_dict(path: str) -> Any:
    """Unpickle the object at `path`. Only load files you trust: unpickling can run code."""
    with open(path, "rb") as fh:
        return pickle.load(fh)


def setup_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all CUDA devices too) and make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False

"""From a validated config to the pieces of a run: data, partition, model, handler, trainer."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fastfl.cli.algorithms import build_handler, build_trainer, find_algorithm
from fastfl.cli.config import Config, check_values
from fastfl.cli.models import check_model, make_model
from fastfl.cli.sources import Data, check_source, load_data
from fastfl.errors import ConfigError, PartitionError, PartitionTypeError

__all__ = ["SCHEMES", "Experiment", "partition_indices", "prepare", "seed_everything"]

SCHEMES = ("auto", "natural", "iid", "noniid-#label", "noniid-labeldir", "unbalance", "noniid-exdir")


@dataclass
class Experiment:
    """Everything a run needs, built deterministically from the config (the same in every process)."""

    config: Config
    algorithm: Any
    data: Data
    slices: list[list[int]]
    model: nn.Module

    @property
    def clients(self) -> int:
        """Clients in total."""
        return len(self.slices)

    @property
    def sample_ratio(self) -> float:
        """The handler's sample ratio that samples exactly ``train.clients_per_round`` clients."""
        k = min(self.config["train"]["clients_per_round"], self.clients)
        return 1.0 if k >= self.clients else (k + 0.5) / self.clients

    def handler(self, model: nn.Module | None = None) -> Any:
        """A fresh server handler over `model` (default: the experiment's model)."""
        model = self.model if model is None else model
        counts = [len(s) for s in self.slices]
        return build_handler(
            self.algorithm, model, self.config["run"]["rounds"], self.sample_ratio, self.config, counts
        )

    def trainer(self, model: nn.Module, first: int = 0, count: int | None = None) -> Any:
        """A serial trainer for clients ``first .. first + count - 1`` (default: all)."""
        end = self.clients if count is None else first + count
        return build_trainer(
            self.algorithm, model, self.data.train, self.slices[first:end], self.config, first
        )


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def partition_indices(
    targets: torch.Tensor, part: dict[str, Any], seed: int, classes: int
) -> list[list[int]]:
    """Split sample indices into ``part["clients"]`` clients with ``part["scheme"]``."""
    from fastfl.utils.dataset import BasicPartitioner

    cls = type("ConfigPartitioner", (BasicPartitioner,), {"num_classes": max(classes, 2)})
    scheme = "iid" if part["scheme"] == "auto" else part["scheme"]
    try:
        p = cls(
            targets.numpy(),
            part["clients"],
            partition=scheme,
            dir_alpha=part["dir_alpha"],
            major_classes_num=part["major_classes"],
            seed=seed,
        )
    except (PartitionError, PartitionTypeError) as err:
        raise ConfigError(f"partition.scheme: {scheme!r} cannot split this data: {err}") from err
    return [np.asarray(p.client_dict[c]).tolist() for c in range(part["clients"])]


def _slices(cfg: Config, data: Data) -> list[list[int]]:
    part = cfg["partition"]
    scheme = part["scheme"]
    if scheme not in SCHEMES:
        raise ConfigError(f"partition.scheme: unknown scheme {scheme!r}; accepted: {', '.join(SCHEMES)}")
    if data.slices is not None and scheme in ("auto", "natural"):
        if ("partition", "clients") in cfg.explicit and part["clients"] != len(data.slices):
            raise ConfigError(
                f"partition.clients: the data has {len(data.slices)} clients of its own, not {part['clients']}; "
                "drop partition.clients or choose a partition.scheme to re-split the pooled data"
            )
        return data.slices
    if scheme == "natural":
        raise ConfigError(
            f"partition.scheme: data.name = {cfg['data']['name']!r} has no natural per-client split"
        )
    return partition_indices(data.train.tensors[1], part, cfg["run"]["seed"], data.num_classes)


def prepare(cfg: Config) -> Experiment:
    """Check everything the config names and build the experiment; writes nothing.

    Raises:
        ConfigError: unknown algorithm, hyperparameter, data source, scheme or model; a missing
            file; data that cannot be split as asked.
    """
    algorithm = find_algorithm(cfg["algorithm"]["name"])
    check_values(cfg, algorithm.hparams)
    check_source(cfg["data"])
    check_model(cfg["model"])
    if cfg["run"]["device"] == "cuda" and not torch.cuda.is_available():
        raise ConfigError('run.device: "cuda" asked for but torch sees no CUDA device; use "cpu"')
    seed = cfg["run"]["seed"]
    seed_everything(seed)
    torch.set_num_threads(cfg["run"]["threads"])
    data = load_data(cfg["data"], seed, cfg["partition"]["clients"])
    if len(data.train) == 0 or len(data.test) == 0:
        raise ConfigError(f"data.name: {cfg['data']['name']!r} gave an empty train or test set")
    slices = _slices(cfg, data)
    torch.manual_seed(seed)
    model = make_model(cfg["model"], tuple(data.train.tensors[0].shape[1:]), data.num_classes)
    return Experiment(cfg, algorithm, data, slices, model)

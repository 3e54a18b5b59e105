"""Run configuration: the schema of `fastfl run`'s TOML file, overrides, and validation.

A config has six sections (every key optional; defaults below). ``[algorithm]`` also takes the
chosen algorithm's hyperparameters by name. Validation raises `ConfigError` with one line that
names the key or path and what is accepted.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastfl.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["SCHEMA", "Config", "load_config", "parse_assignment"]

# section -> key -> (type name, default, help)
SCHEMA: dict[str, dict[str, tuple[str, Any, str]]] = {
    "run": {
        "rounds": ("int", 10, "communication rounds"),
        "seed": ("int", 0, "seed of model init, sampling, partitions and shuffling"),
        "device": ("str", "cpu", '"cpu" or "cuda"'),
        "out": ("str", "", "run folder (default runs/<config name>)"),
        "eval_every": ("int", 1, "evaluate the global model every N rounds (and after the last)"),
        "checkpoint_every": ("int", 0, "save a resumable checkpoint every N rounds (0: never)"),
        "threads": ("int", 1, "torch threads per process"),
        "tensorboard": ("bool", True, "write TensorBoard event files when tensorboard is installed"),
    },
    "algorithm": {
        "name": ("str", "fedavg", "algorithm name (fastfl.contrib.algorithm)"),
    },
    "data": {
        "name": (
            "str",
            "digits",
            (
                "digits, synthetic, fedprox-synthetic, fcube, leaf, mnist, fmnist, "
                "cifar10, cifar100, file, or module:function"
            ),
        ),
        "path": ("str", "", "data file (.npz/.pt), LEAF root, or torchvision root"),
        "leaf_name": ("str", "femnist", "LEAF data set under data.path"),
        "test_fraction": ("float", 0.2, "fraction held out for testing (generated data, digits)"),
        "samples": ("int", 6000, "samples of generated data (synthetic, fcube)"),
        "dim": ("int", 60, "features of fedprox-synthetic / synthetic data"),
        "classes": ("int", 10, "classes of generated data"),
        "alpha": ("float", 1.0, "fedprox-synthetic: spread of client models"),
        "beta": ("float", 1.0, "fedprox-synthetic: spread of client inputs"),
        "options": ("dict", {}, "keyword arguments of a module:function data source"),
    },
    "partition": {
        "scheme": (
            "str",
            "auto",
            "auto, natural, iid, noniid-#label, noniid-labeldir, unbalance, noniid-exdir",
        ),
        "clients": ("int", 100, "clients in total (natural partitions: the data's own count)"),
        "dir_alpha": ("float", 0.5, "Dirichlet concentration"),
        "major_classes": ("int", 2, "classes per client for noniid-#label / noniid-exdir"),
        "plot": (
            "bool",
            True,
            "write the partition (json), its report (txt, csv) and plot (png) into the run folder",
        ),
    },
    "model": {
        "name": ("str", "mlp", "mlp, cnn, logistic, linear, or module:Class"),
        "hidden": ("list", [64, 64], "hidden layer widths of the MLP"),
        "kwargs": ("dict", {}, "keyword arguments of a module:Class model"),
    },
    "train": {
        "epochs": ("int", 5, "local epochs per round"),
        "batch_size": ("int", 8, "local batch size"),
        "lr": ("float", 0.2, "local SGD learning rate"),
        "clients_per_round": ("int", 10, "clients sampled per round"),
        "batch_clients": ("int", 0, "train up to this many clients at once, vmapped (0: one at a time)"),
        "weighted": ("bool", True, "weight FedAvg by sample counts (False: FedLab's uniform mean)"),
    },
}

# Keys whose change does not make a checkpoint belong to another experiment.
RUN_CONTROL = {
    ("run", "out"),
    ("run", "checkpoint_every"),
    ("run", "rounds"),
    ("run", "tensorboard"),
    ("run", "eval_every"),
    ("partition", "plot"),
}


@dataclass
class Config:
    """A validated configuration: ``values[section][key]`` plus the keys the user set."""

    values: dict[str, dict[str, Any]]
    explicit: set[tuple[str, str]]
    name: str = "run"

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    def experiment(self) -> dict[str, dict[str, Any]]:
        """The values that define the experiment (what a checkpoint must match)."""
        return {
            s: {k: v for k, v in keys.items() if (s, k) not in RUN_CONTROL} for s, keys in self.values.items()
        }


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    return isinstance(value, dict)


_KIND_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "list": "a list",
    "dict": "a table",
}


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value in TOML syntax; a bare word is a string) into (key, value)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set train.lr=0.05")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _resolve_key(key: str) -> tuple[str, str]:
    if "." in key:
        section, _, name = key.partition(".")
        return section, name
    owners = [s for s, keys in SCHEMA.items() if key in keys]
    if len(owners) == 1:
        return owners[0], key
    if owners:
        raise ConfigError(f"{key}: ambiguous, write one of {', '.join(f'{s}.{key}' for s in owners)}")
    raise ConfigError(f"{key}: unknown key; write section.key (sections: {', '.join(SCHEMA)})")


def load_config(
    path: str | Path | None, overrides: list[tuple[str, Any]] = (), hparams: dict[str, Any] | None = None
) -> Config:
    """Read a TOML config, apply ``(key, value)`` overrides, check every key and type.

    Args:
        path: the TOML file (None: defaults only).
        overrides: ``("section.key" or a unique bare key, value)`` pairs, applied in order.
        hparams: the chosen algorithm's hyperparameters and defaults (None: not checked here).

    Raises:
        ConfigError: unreadable file, unknown section or key, or a value of the wrong type.
    """
    raw: dict[str, Any] = {}
    name = "run"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid TOML ({err})") from err
        name = path.stem
    values = {s: {k: copy.deepcopy(spec[1]) for k, spec in keys.items()} for s, keys in SCHEMA.items()}
    explicit: set[tuple[str, str]] = set()
    for section, table in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"[{section}]: unknown section; accepted: {', '.join(SCHEMA)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a [{section}] table")
        for key, value in table.items():
            _set(values, explicit, section, key, value)
    for key, value in overrides:
        section, name_ = _resolve_key(key)
        if section not in SCHEMA:
            raise ConfigError(f"{key}: unknown section {section!r}; accepted: {', '.join(SCHEMA)}")
        _set(values, explicit, section, name_, value)
    config = Config(values, explicit, name)
    check_values(config, hparams)
    return config


def _set(values: dict, explicit: set, section: str, key: str, value: Any) -> None:
    spec = SCHEMA[section].get(key)
    if spec is None and section != "algorithm":
        raise ConfigError(f"{section}.{key}: unknown key; accepted: {', '.join(SCHEMA[section])}")
    if spec is not None:
        if not _type_ok(spec[0], value):
            raise ConfigError(f"{section}.{key}: expected {_KIND_WORDS[spec[0]]}, got {value!r}")
        if spec[0] == "float":
            value = float(value)
    values[section][key] = value
    explicit.add((section, key))


def check_values(config: Config, hparams: dict[str, Any] | None) -> None:
    """Check ranges and the algorithm's hyperparameter names (types of hparams: as their defaults)."""
    run, train, part = config["run"], config["train"], config["partition"]
    for section, key, low in [
        ("run", "rounds", 0),
        ("run", "eval_every", 1),
        ("run", "checkpoint_every", 0),
        ("run", "threads", 1),
        ("train", "epochs", 0),
        ("train", "batch_size", 1),
        ("train", "clients_per_round", 1),
        ("train", "batch_clients", 0),
        ("partition", "clients", 1),
        ("partition", "major_classes", 1),
        ("data", "samples", 1),
        ("data", "dim", 1),
        ("data", "classes", 2),
    ]:
        if config[section][key] < low:
            raise ConfigError(f"{section}.{key}: must be >= {low}, got {config[section][key]}")
    if run["device"] not in ("cpu", "cuda"):
        raise ConfigError(f'run.device: expected "cpu" or "cuda", got {run["device"]!r}')
    if not 0.0 <= config["data"]["test_fraction"] < 1.0:
        raise ConfigError(f"data.test_fraction: must be in [0, 1), got {config['data']['test_fraction']}")
    if train["lr"] <= 0:
        raise ConfigError(f"train.lr: must be > 0, got {train['lr']}")
    if part["dir_alpha"] <= 0:
        raise ConfigError(f"partition.dir_alpha: must be > 0, got {part['dir_alpha']}")
    if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in config["model"]["hidden"]):
        raise ConfigError(
            f"model.hidden: expected a list of positive integers, got {config['model']['hidden']}"
        )
    if hparams is None:
        return
    algo = config["algorithm"]
    for key, value in algo.items():
        if key == "name":
            continue
        if key not in hparams:
            accepted = ", ".join(sorted(hparams)) or "none"
            raise ConfigError(
                f"algorithm.{key}: not a hyperparameter of {algo['name']!r}; accepted: {accepted}"
            )
        default = hparams[key]
        if default is not None and not _same_kind(default, value):
            raise ConfigError(
                f"algorithm.{key}: expected {type(default).__name__} like the default {default!r}, got {value!r}"
            )


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))

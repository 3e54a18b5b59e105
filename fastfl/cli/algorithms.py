"""Algorithms by name (contract C6: `fastfl.contrib.algorithm.get_algorithm`) and their construction."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from fastfl.errors import ConfigError, FastFLError

__all__ = ["build_handler", "build_trainer", "find_algorithm"]


@dataclass(frozen=True)
class _Builtin:
    """FedAvg with fastfl's own roles, used when `fastfl.contrib.algorithm` is not installed."""

    name: str
    handler: type
    serial_trainer: type
    trainer: type | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    asynchronous: bool = False


def _builtin(name: str) -> Any:
    from fastfl.core.client import SubsetSerialTrainer
    from fastfl.core.server import SyncParameterServerHandler

    if name != "fedavg":
        raise ConfigError(f"algorithm.name: unknown algorithm {name!r}; accepted: fedavg")
    return _Builtin("fedavg", SyncParameterServerHandler, SubsetSerialTrainer)


def find_algorithm(name: str) -> Any:
    """Return the C6 `Algorithm` called `name` (ConfigError listing the known names otherwise)."""
    try:
        from fastfl.contrib.algorithm import get_algorithm
    except ModuleNotFoundError as err:
        if err.name not in ("fastfl.contrib", "fastfl.contrib.algorithm"):
            raise
        return _builtin(name)
    try:
        algorithm = get_algorithm(name)
    except (FastFLError, KeyError, ValueError) as err:
        raise ConfigError(f"algorithm.name: {err}") from err
    if algorithm.asynchronous:
        raise ConfigError(
            f"algorithm.name: {name!r} is asynchronous; fastfl run runs synchronous rounds "
            "(see examples/asynchronous.py for asynchronous training)"
        )
    return algorithm


def _accepts(cls: type) -> tuple[set[str], bool]:
    params = inspect.signature(cls.__init__).parameters.values()
    names = {p.name for p in params}
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _call(cls: type, args: tuple, options: dict[str, Any], hparams: dict[str, Any]) -> Any:
    """Construct ``cls(*args, **options)`` keeping the options (and hyperparameters) it accepts."""
    names, var_kw = _accepts(cls)
    kwargs = {k: v for k, v in options.items() if var_kw or k in names}
    kwargs.update({k: v for k, v in hparams.items() if var_kw or k in names})
    return cls(*args, **kwargs)


def algorithm_hparams(algorithm: Any, chosen: dict[str, Any]) -> dict[str, Any]:
    """The algorithm's defaults updated with the config's ``[algorithm]`` values (less ``name``)."""
    return {**algorithm.hparams, **{k: v for k, v in chosen.items() if k != "name"}}


def build_handler(algorithm: Any, model: Any, rounds: int, ratio: float, cfg: Any) -> Any:
    """The algorithm's server handler over `model` (seeded sampling, weighted as configured)."""
    options = {
        "cuda": cfg["run"]["device"] == "cuda",
        "weighted": cfg["train"]["weighted"],
        "seed": cfg["run"]["seed"],
    }
    return _call(
        algorithm.handler, (model, rounds, ratio), options, algorithm_hparams(algorithm, cfg["algorithm"])
    )


def build_trainer(
    algorithm: Any, model: Any, dataset: Any, slices: list, cfg: Any, id_offset: int = 0
) -> Any:
    """The algorithm's serial trainer for the clients `slices` (global ids from `id_offset`)."""
    train = cfg["train"]
    options = {
        "cuda": cfg["run"]["device"] == "cuda",
        "args": {"epochs": train["epochs"], "batch_size": train["batch_size"], "lr": train["lr"]},
        "seed": cfg["run"]["seed"],
        "id_offset": id_offset,
        "batch_clients": train["batch_clients"] or None,
    }
    hp = algorithm_hparams(algorithm, cfg["algorithm"])
    return _call(algorithm.serial_trainer, (model, dataset, slices), options, hp)

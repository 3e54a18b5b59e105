"""Algorithms by name (contract C6: `fastfl.contrib.algorithm.get_algorithm`) and their construction."""

from __future__ import annotations

import inspect
from typing import Any

from fastfl.errors import ConfigError, UnknownAlgorithmError

__all__ = ["algorithm_hparams", "build_handler", "build_trainer", "find_algorithm"]


def find_algorithm(name: str) -> Any:
    """Return the C6 `Algorithm` called `name` (ConfigError listing the known names otherwise)."""
    from fastfl.contrib.algorithm import get_algorithm

    try:
        algorithm = get_algorithm(name)
    except UnknownAlgorithmError as err:
        raise ConfigError(f"algorithm.name: {err}") from err
    if algorithm.asynchronous:
        raise ConfigError(
            f"algorithm.name: {name!r} is asynchronous; fastfl run runs synchronous rounds "
            "(see examples/asynchronous.py for asynchronous training)"
        )
    return algorithm


def algorithm_hparams(algorithm: Any, cfg: Any) -> dict[str, Any]:
    """The config's ``[algorithm]`` values (less ``name``) that override the algorithm's defaults.

    ``train.weighted``, when set explicitly, is the algorithm's ``weighted`` unless
    ``algorithm.weighted`` is set too.
    """
    chosen = {k: v for k, v in cfg["algorithm"].items() if k != "name"}
    if "weighted" in algorithm.hparams and "weighted" not in chosen and ("train", "weighted") in cfg.explicit:
        chosen["weighted"] = cfg["train"]["weighted"]
    return chosen


def _call(cls: type, args: tuple, options: dict[str, Any], hparams: dict[str, Any]) -> Any:
    """``cls(*args, **options, **hparams)``, leaving out the options it does not take."""
    params = inspect.signature(cls.__init__).parameters.values()
    names = {p.name for p in params}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    kwargs = {k: v for k, v in options.items() if var_kw or k in names}
    kwargs.update(hparams)
    return cls(*args, **kwargs)


def build_handler(algorithm: Any, model: Any, rounds: int, ratio: float, cfg: Any, counts: list[int]) -> Any:
    """The algorithm's server handler over `model` (seeded sampling; `counts`: clients' sample counts)."""
    chosen = algorithm_hparams(algorithm, cfg)
    if chosen.get("sampling") == "weighted" and chosen.get("sample_weights") is None:
        chosen["sample_weights"] = [float(c) for c in counts]  # q-FFL: sampling proportional to n_k
    options = {
        "cuda": cfg["run"]["device"] == "cuda",
        "weighted": cfg["train"]["weighted"],
        "seed": cfg["run"]["seed"],
    }
    return _call(algorithm.handler, (model, rounds, ratio), options, algorithm.handler_kwargs(**chosen))


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
    hparams = algorithm.trainer_kwargs(**algorithm_hparams(algorithm, cfg))
    return _call(algorithm.serial_trainer, (model, dataset, slices), options, hparams)

"""Choose an algorithm by name: `ALGORITHMS`, `get_algorithm`, the `Algorithm` record."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from fastfl.errors import UnknownAlgorithmError

__all__ = ["ALGORITHMS", "Algorithm", "get_algorithm", "register_algorithm"]


@dataclass(frozen=True)
class Algorithm:
    """One federated algorithm: its classes and its hyperparameters with their defaults.

    Attributes:
        name: the registry key (lower case).
        handler: the server handler class.
        serial_trainer: the many-clients-per-process trainer class.
        trainer: the one-client trainer class (None if the algorithm has none).
        hparams: hyperparameter names -> defaults; each is a keyword argument of the serial
            trainer's and/or the handler's constructor (`trainer_kwargs` / `handler_kwargs` split them).
        asynchronous: True when the handler runs with the asynchronous managers.
    """

    name: str
    handler: type
    serial_trainer: type
    trainer: type | None
    hparams: dict[str, Any] = field(default_factory=dict)
    asynchronous: bool = False

    def _kwargs(self, cls: type | None, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = set(overrides) - set(self.hparams)
        if unknown:
            raise UnknownAlgorithmError(
                f"{self.name} has no hyperparameter(s) {sorted(unknown)}; it has {sorted(self.hparams)}"
            )
        if cls is None:
            return {}
        accepted = inspect.signature(cls.__init__).parameters
        values = {**self.hparams, **overrides}
        return {k: v for k, v in values.items() if k in accepted}

    def trainer_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The hyperparameters (defaults, then `overrides`) that the serial trainer takes."""
        return self._kwargs(self.serial_trainer, overrides)

    def handler_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The hyperparameters (defaults, then `overrides`) that the handler takes."""
        return self._kwargs(self.handler, overrides)


ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(algorithm: Algorithm) -> Algorithm:
    """Add an algorithm to `ALGORITHMS` under its (lower-case) name; return it."""
    ALGORITHMS[algorithm.name.lower()] = algorithm
    return algorithm


def get_algorithm(name: str) -> Algorithm:
    """Return the algorithm called `name` (case-insensitive).

    Raises:
        UnknownAlgorithmError: no such algorithm (the message lists the known names).
    """
    key = str(name).lower()
    if key not in ALGORITHMS:
        raise UnknownAlgorithmError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[key]

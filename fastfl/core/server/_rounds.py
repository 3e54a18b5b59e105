"""Book-keeping of one synchronous round: which ranks still owe updates, and the round deadline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastfl.core._updates import clients_in

__all__ = ["RoundClock", "RoundState"]


class RoundClock:
    """The deadline of a round: fixed, none, or derived from the rounds seen so far ("auto").

    "auto": the first round may take the network's timeout (nothing is known yet about how long
    training takes); later rounds get `factor` × the slowest complete round, at least `floor`.

    Args:
        setting: "auto", a positive number of seconds, or None (only the network's timeout).
        floor: the shortest automatic deadline in seconds.
        factor: the automatic deadline as a multiple of the slowest complete round.
    """

    def __init__(self, setting: float | str | None, floor: float, factor: float):
        if (
            setting != "auto"
            and setting is not None
            and not (isinstance(setting, int | float) and not isinstance(setting, bool) and setting > 0)
        ):
            raise ValueError(
                f"round_timeout must be 'auto', a positive number of seconds or None, got {setting!r}"
            )
        if not floor > 0 or not factor >= 1:
            raise ValueError(
                f"round_timeout_floor must be > 0 and round_timeout_factor >= 1, got {floor!r} and {factor!r}"
            )
        self.setting = setting
        self.floor = float(floor)
        self.factor = float(factor)
        self.slowest: float | None = None

    def observe(self, seconds: float) -> None:
        """Record the duration of a round that completed normally."""
        self.slowest = seconds if self.slowest is None else max(self.slowest, seconds)

    def deadline(self, network: Any) -> float:
        """Seconds the next round may wait for its updates (math.inf: no deadline of its own)."""
        if self.setting is None:
            return math.inf
        if self.setting != "auto":
            return float(self.setting)
        if self.slowest is None:
            return float(getattr(network, "timeout", math.inf))
        return max(self.floor, self.factor * self.slowest)


class RoundState:
    """The ranks a round still waits for.

    Args:
        activated: ``{rank: number of clients activated}`` as the stock `activate_clients` records
            it, or None when it is unknown (an overridden `activate_clients`).
        excluded: ranks already lost before the round.
    """

    def __init__(self, activated: Mapping[int, int] | None, excluded: set[int]):
        self.pending: dict[int, int] | None = (
            {r: n for r, n in activated.items() if r not in excluded} if activated is not None else None
        )
        self.missing: set[int] = set()

    def lost(self, rank: int) -> None:
        """`rank` will send nothing more."""
        if self.pending is None or rank in self.pending:
            self.missing.add(rank)
        if self.pending is not None:
            self.pending.pop(rank, None)

    def answered(self, rank: int, payload: Sequence[Any] | None, meta: Mapping[str, float] | None) -> None:
        """`rank` sent an update (for ``meta["num_clients"]`` clients, else one per tensor)."""
        if self.pending is None or rank not in self.pending:
            return
        self.pending[rank] -= clients_in(payload, meta)
        if self.pending[rank] <= 0:
            del self.pending[rank]

    @property
    def settled(self) -> bool:
        """True when some activated rank was lost and every other one has answered."""
        return bool(self.missing) and self.pending is not None and not self.pending

"""`SubsetSerialTrainer(batch_clients="auto")`: time both training modes on the first rounds, keep the faster.

One client at a time wins when each client's steps are large GEMMs (the vmapped step then adds
stacking and indexing work for nothing); vmapped training wins when per-client overhead dominates
(small models, few samples, many clients). Neither a model-size nor a client-count rule decides it
on every machine, so the chooser measures: rounds alternate between the two modes (one at a time
first) until each has run `trials` times, then every later round uses the mode with the lower best
time per sample-epoch (samples x epochs trained in the round). Results of the two modes agree up to
float rounding, so the choice never changes what is computed, only how fast. For an
`nn.Sequential` of Linear/ReLU layers the batched mode is the hand-fused step of `_fused.py`
(unless `fused=False`), so that is what competes with one client at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from torch import Tensor

__all__ = ["AUTO", "AUTO_CHUNK", "ModeChooser"]

AUTO = "auto"
# Clients per vmapped group when "auto" picks vmapped training (the setting measured in bench/).
AUTO_CHUNK = 256

Process = Callable[[int | None, Sequence[int], list[Tensor]], list[Tensor]]


class ModeChooser:
    """Alternate one-at-a-time (None) and vmapped (`chunk`) rounds, then keep the faster mode.

    Args:
        chunk: clients per vmapped group.
        trials: timed rounds of each mode before choosing (the best of them counts, so a first
            round's warm-up does not decide).
        clock: the timer (a test hook).
    """

    def __init__(
        self, chunk: int = AUTO_CHUNK, trials: int = 2, clock: Callable[[], float] = time.perf_counter
    ):
        self.chunk = chunk
        self.trials = trials
        self._clock = clock
        self._times: dict[int | None, list[float]] = {None: [], chunk: []}
        self.choice: int | str | None = AUTO  # AUTO until decided, then None or chunk

    @property
    def decided(self) -> bool:
        """Whether the mode is fixed for the rest of the run."""
        return self.choice != AUTO

    def next_mode(self) -> int | None:
        """The mode of the next round: the choice once decided, else the mode with fewer trials."""
        if self.decided:
            return self.choice  # type: ignore[return-value]
        return None if len(self._times[None]) <= len(self._times[self.chunk]) else self.chunk

    def record(self, mode: int | None, seconds: float, units: int) -> None:
        """Record one round of `mode` that trained `units` sample-epochs in `seconds`."""
        self._times[mode].append(seconds / max(units, 1))
        if all(len(t) >= self.trials for t in self._times.values()):
            self.choice = min(self._times, key=lambda m: min(self._times[m]))

    def force_serial(self) -> None:
        """Fix one-at-a-time training (the clients cannot be trained vmapped)."""
        self.choice = None

    def run(self, process: Process, ids: Sequence[int], payload: list[Tensor], units: int) -> list[Tensor]:
        """Run one round with `process(mode, ids, payload)`, timing it while still undecided."""
        mode = self.next_mode()
        if self.decided:
            return process(mode, ids, payload)
        start = self._clock()
        result = process(mode, ids, payload)
        self.record(mode, self._clock() - start, units)
        return result

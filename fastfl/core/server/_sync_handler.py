"""SyncParameterServerHandler: sampling and streaming FedAvg for synchronous rounds.

Fidelity rule (docs/compat.md): what FedLab-1.2.1-style code can observe keeps FedLab's behaviour
by default: `sample_clients` draws as FedLab does, `_update_global_model(payload)` takes FedLab's
payload (every tensor one client's model) and returns True when the round ends. fastfl's extras
(sample-count weighting, partial rounds, skipping lost clients) are opt-in or used by fastfl's
managers only; see `receive_meta`, `finish_round`, `mark_unavailable` and `mark_available`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fastfl.core._updates import UpdateFormatError, parse_uplink
from fastfl.core.model_maintainer import read_params, write_params_
from fastfl.core.server._base_handler import ParameterServerBackendHandler
from fastfl.utils.aggregator import StreamingAggregator

__all__ = ["SyncParameterServerHandler"]


class SyncParameterServerHandler(ParameterServerBackendHandler):
    """Synchronous FedAvg: sample clients each round, average their updates as they arrive.

    Updates are accumulated into one fp32 buffer the moment they arrive (O(model) memory, no list
    of K models); after the round's last update the global model is overwritten in place.

    Args:
        model: the global model (not copied).
        global_round: the number of rounds to run (`if_stop` after that many).
        sample_ratio: the fraction of all clients sampled per round, in [0, 1].
        cuda: keep the model on a CUDA device.
        logger: where to log (default: the ``fastfl.server`` logger).
        weighted: weight FedAvg by the sample counts the clients report in their uploads'
            metadata (FedLab: uniform). The server manager hands them over via `receive_meta`.
        seed: seed of the client sampling (None: Python's global `random`, as FedLab; either way
            the ids come in FedLab's order, not sorted).
        keep_updates: also keep every received model in `client_buffer_cache` (FedLab's list).
        on_round_end: called with the handler after each round's global update.
        acc_dtype: precision of the running sum: torch.float32 (memory: one model) or
            torch.float64 (two models; the result then hardly depends on arrival order).
    """

    def __init__(
        self,
        model: nn.Module,
        global_round: int,
        sample_ratio: float,
        cuda: bool = False,
        logger: Any = None,
        *,
        weighted: bool = False,
        seed: int | None = None,
        keep_updates: bool = False,
        on_round_end: Callable[[SyncParameterServerHandler], None] | None = None,
        acc_dtype: torch.dtype = torch.float32,
    ):
        super().__init__(model, cuda)
        if not 0.0 <= sample_ratio <= 1.0:
            raise ValueError(f"sample_ratio must be in [0, 1], got {sample_ratio!r}")
        if int(global_round) != global_round or global_round < 0:
            raise ValueError(f"global_round must be an integer >= 0, got {global_round!r}")
        self._LOGGER = logger if logger is not None else logging.getLogger("fastfl.server")
        self.client_num_in_total = 0
        self.sample_ratio = sample_ratio
        self.global_round = int(global_round)
        self.round = 0
        self.weighted = weighted
        self.keep_updates = keep_updates
        self.on_round_end = on_round_end
        self.client_buffer_cache: list[Tensor] = []
        self.unavailable: set[int] = set()
        self._rng: random.Random | Any = random.Random(seed) if seed is not None else random
        self._numel = self.num_params
        self._downlink = torch.empty(0)
        if self.model_dtype == torch.float64:
            acc_dtype = torch.float64
        self._agg = StreamingAggregator(self._numel, acc_dtype=acc_dtype, device="cpu")
        self._received = 0
        self._target: int | None = None
        self._meta: dict[str, float] | None = None
        self.last_round_clients = 0

    @property
    def downlink_package(self) -> list[Tensor]:
        """``[global params]``, serialized into a buffer the handler reuses every round."""
        return [read_params(self._model, out=self._downlink_buffer())]

    def _downlink_buffer(self) -> Tensor:
        if self._downlink.numel() != self._numel:
            self._downlink = torch.empty(self._numel, dtype=self.model_dtype)
        return self._downlink

    @property
    def if_stop(self) -> bool:
        """True once `global_round` rounds have run."""
        return self.round >= self.global_round

    @property
    def client_num_per_round(self) -> int:
        """``max(1, int(sample_ratio * client_num_in_total))``."""
        return max(1, int(self.sample_ratio * self.client_num_in_total))

    @property
    def round_target(self) -> int:
        """How many clients' updates complete the current round."""
        return self._target if self._target is not None else self.client_num_per_round

    @property
    def received(self) -> int:
        """How many clients' updates the current round has received so far."""
        return self._received

    def sample_clients(self) -> list[int]:
        """Draw this round's client ids (0..N-1) as FedLab does, skipping `unavailable` ones.

        With no client unavailable the draw is FedLab's ``random.sample(range(N), k)`` (same
        random state, same ids in the same order).
        """
        if self.client_num_in_total < 1:
            raise ValueError("client_num_in_total is 0; the manager's setup (or the user) must set it first")
        pool = [i for i in range(self.client_num_in_total) if i not in self.unavailable]
        if not pool:
            raise ValueError("every client is unavailable; no client can be sampled")
        k = min(self.client_num_per_round, len(pool))
        ids = self._rng.sample(pool, k)
        self._target = k
        return ids

    def _add(self, model: Tensor, weight: float) -> None:
        self._agg.add(model if model.device.type == "cpu" else model.cpu(), weight)

    def receive_meta(self, meta: dict[str, float] | None) -> None:
        """Take the metadata of the next upload (its sample counts), before `_update_global_model`.

        fastfl's server managers call this when the handler has it; FedLab-style handlers never
        see metadata. In-process code may call it too (``handler.receive_meta(trainer.uplink_meta)``).
        """
        self._meta = dict(meta) if meta else None

    def _update_global_model(self, payload: Sequence[Tensor]) -> bool:
        """Accumulate one upload (FedLab's payload: every tensor one client's model).

        After the round's last update the global model is updated in place.

        Returns:
            True when this upload completed the round.

        Raises:
            UpdateFormatError: malformed upload, counts missing in weighted mode, or more updates
                than the round sampled.
        """
        meta, self._meta = self._meta, None
        update = parse_uplink(payload, self._numel, meta)
        if self._received + update.num_clients > self.round_target:
            raise UpdateFormatError(
                f"received {self._received + update.num_clients} client updates in round {self.round} "
                f"but only {self.round_target} clients were sampled"
            )
        self._accumulate(update.models, update.counts, update.num_clients)
        self._received += update.num_clients
        if self.keep_updates:
            self.client_buffer_cache.extend(m.clone() for m in update.models)
        if self._received == self.round_target:
            self.finish_round()
            return True
        return False

    def _accumulate(self, models: list[Tensor], counts: list[float] | None, num_clients: int) -> None:
        if self.weighted:
            if counts is None:
                raise UpdateFormatError(
                    "weighted FedAvg needs sample counts but this upload came without them (a FedLab "
                    "client, a trainer with report_samples=False, or a network that drops package "
                    "metadata); use weighted=False or send counts in the upload's metadata"
                )
            if len(models) == 1 and num_clients > 1:
                self._add(models[0], sum(counts))
            else:
                for m, c in zip(models, counts, strict=True):
                    self._add(m, c)
        else:
            if len(models) != num_clients:
                raise UpdateFormatError(
                    "a client averaged its clients locally (aggregate=True) but the server averages "
                    "uniformly; use weighted=True on the server or aggregate=False on the client"
                )
            for m in models:
                self._add(m, 1.0)

    def finish_round(self) -> bool:
        """Apply the updates received so far and start the next round.

        The manager calls this when a round's deadline passes with some clients missing. With no
        update at all, the model is left as it is. Returns True when the model changed.
        """
        changed = self._agg.count > 0 and self._agg.total_weight > 0
        if changed:
            write_params_(self._model, self._agg.write_(self._downlink_buffer()))
        self.last_round_clients = self._received
        self.round += 1
        self._agg.reset()
        self._received, self._target = 0, None
        self.client_buffer_cache = []
        if self.on_round_end is not None:
            self.on_round_end(self)
        return changed

    def mark_unavailable(self, ids: Iterable[int]) -> None:
        """Stop sampling these client ids (their process died or stopped answering)."""
        self.unavailable.update(int(i) for i in ids)

    def mark_available(self, ids: Iterable[int]) -> None:
        """Sample these client ids again (their process answered after all)."""
        self.unavailable.difference_update(int(i) for i in ids)

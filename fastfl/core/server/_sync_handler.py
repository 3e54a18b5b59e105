"""SyncParameterServerHandler: sampling and streaming FedAvg for synchronous rounds."""

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
        weighted: weight FedAvg by the sample counts the clients report (FedLab: uniform).
        seed: seed of the client sampling (None: Python's global `random`, as FedLab).
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
        self._logger = logger if logger is not None else logging.getLogger("fastfl.server")
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
        """Draw this round's client ids (0..N-1, sorted), skipping `unavailable` ones."""
        if self.client_num_in_total < 1:
            raise ValueError("client_num_in_total is 0; the manager's setup (or the user) must set it first")
        pool = [i for i in range(self.client_num_in_total) if i not in self.unavailable]
        if not pool:
            raise ValueError("every client is unavailable; no client can be sampled")
        k = min(self.client_num_per_round, len(pool))
        ids = sorted(self._rng.sample(pool, k))
        self._target = k
        return ids

    def _add(self, model: Tensor, weight: float) -> None:
        self._agg.add(model if model.device.type == "cpu" else model.cpu(), weight)

    def _update_global_model(self, payload: Sequence[Tensor]) -> bool:
        """Accumulate one upload; after the round's last one, update the global model.

        Returns:
            True when this upload completed the round.

        Raises:
            UpdateFormatError: malformed upload, counts missing in weighted mode, or more updates
                than the round sampled.
        """
        update = parse_uplink(payload, self._numel)
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
                    "weighted FedAvg needs sample counts but a client sent none; enable report_samples "
                    "on the client trainers or use weighted=False"
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

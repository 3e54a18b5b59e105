"""The base of the synchronous algorithm handlers: parse each upload, absorb it, apply at round end.

`AlgorithmServerHandler` keeps `SyncParameterServerHandler`'s round protocol (sampling, the
round target, `finish_round` on a deadline, unavailable clients), so it runs under the stock
`SynchronousServerManager`, and replaces the update: each client's vectors and numbers go to
`_absorb` as they arrive (O(model) running sums, no list of K models), and `_apply` turns the
sums into the new global model after the round's last update.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fastfl import ops
from fastfl.contrib.algorithm._uplink import parse_uplink
from fastfl.core.model_maintainer import read_params, write_params_
from fastfl.core.server._sync_handler import SyncParameterServerHandler
from fastfl.errors import UpdateFormatError

__all__ = ["AlgorithmServerHandler"]

SAMPLINGS = ("uniform", "weighted")


class AlgorithmServerHandler(SyncParameterServerHandler):
    """Synchronous handler of an FL algorithm; as is, weighted (or uniform) FedAvg.

    Args:
        model: the global model (float32; not copied).
        global_round: rounds to run.
        sample_ratio: fraction of clients sampled per round.
        cuda: keep the model on a CUDA device.
        logger: where to log.
        weighted: weight clients by their sample counts n_k (the papers' FedAvg); False: uniform
            (FedLab 1.3's contrib handlers).
        seed: seed of the client sampling (None: Python's global `random`).
        on_round_end: called with the handler after each round's update.
        sampling: "uniform" (without replacement) or "weighted": without replacement with
            probability proportional to `sample_weights` (q-FFL samples proportional to n_k).
        sample_weights: per global client id, its sampling weight (its n_k).
    """

    fields = 1
    width = 1

    def __init__(
        self,
        model: nn.Module,
        global_round: int,
        sample_ratio: float,
        cuda: bool = False,
        logger: Any = None,
        *,
        weighted: bool = True,
        seed: int | None = None,
        on_round_end: Callable[[Any], None] | None = None,
        sampling: str = "uniform",
        sample_weights: Sequence[float] | None = None,
    ):
        super().__init__(
            model, global_round, sample_ratio, cuda, logger, weighted=weighted, seed=seed,
            on_round_end=on_round_end, acc_dtype=torch.float64,
        )  # fmt: skip
        if self.model_dtype != torch.float32:
            raise TypeError("fastfl.contrib.algorithm handlers need a model whose parameters are all float32")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be 'uniform' or 'weighted', got {sampling!r}")
        if sampling == "weighted" and sample_weights is None:
            raise ValueError("sampling='weighted' needs sample_weights (each client's n_k)")
        self.sampling = sampling
        self.sample_weights = None if sample_weights is None else [float(w) for w in sample_weights]
        self._x = torch.empty(self._numel, dtype=torch.float32)
        self._sum = torch.zeros(self._numel, dtype=torch.float64)
        self._weight = 0.0

    # ---- hooks -------------------------------------------------------------------------------

    def _absorb(self, vectors: list[Tensor], n: float, info: list[float]) -> None:
        """Take one client's update (its vectors, sample count, scalars) into the running sums."""
        w = n if self.weighted else 1.0
        ops.accumulate_(self._sum, vectors[0], w)
        self._weight += w

    def _apply(self, x: Tensor) -> None:
        """Turn this round's sums into the new global parameters, written into x (flat float32)."""
        if self._weight > 0:
            x.copy_(self._sum / self._weight)

    def _reset_sums(self) -> None:
        self._sum.zero_()
        self._weight = 0.0

    def _state(self) -> dict[str, Any]:
        """Algorithm state beyond the model, the round and the sampler (subclasses extend)."""
        return {}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what `_state` returned."""

    # ---- protocol --------------------------------------------------------------------------

    def sample_clients(self) -> list[int]:
        """Draw this round's clients: uniformly, or proportionally to `sample_weights`."""
        if self.sampling == "uniform":
            return super().sample_clients()
        assert self.sample_weights is not None
        if len(self.sample_weights) != self.client_num_in_total:
            raise ValueError(
                f"sample_weights has {len(self.sample_weights)} entries for {self.client_num_in_total} clients"
            )
        pool = [i for i in range(self.client_num_in_total) if i not in self.unavailable]
        if not pool:
            raise ValueError("every client is unavailable; no client can be sampled")
        k = min(self.client_num_per_round, len(pool))
        # Efraimidis-Spirakis: the k largest u^(1/w) are a weighted sample without replacement.
        keys = [(self._rng.random() ** (1.0 / max(self.sample_weights[i], 1e-300)), i) for i in pool]
        ids = sorted(i for _, i in sorted(keys, reverse=True)[:k])
        self._target = k
        return ids

    def _update_global_model(self, payload: Sequence[Tensor]) -> bool:
        """Absorb one upload (one or many clients); after the round's last one, update the model.

        Returns:
            True when this upload completed the round.
        """
        vectors, rows = parse_uplink(payload, self.fields, self.width, self._numel)
        if self._received + len(rows) > self.round_target:
            raise UpdateFormatError(
                f"received {self._received + len(rows)} client updates in round {self.round} "
                f"but only {self.round_target} clients were sampled"
            )
        for vecs, row in zip(vectors, rows, strict=True):
            self._absorb([v if v.device.type == "cpu" else v.cpu() for v in vecs], row[0], row[1:])
        self._received += len(rows)
        if self._received == self.round_target:
            self.finish_round()
            return True
        return False

    def finish_round(self) -> bool:
        """Apply the updates received so far and start the next round (True if the model changed)."""
        changed = self._received > 0
        if changed:
            read_params(self._model, out=self._x)
            self._apply(self._x)
            write_params_(self._model, self._x)
        self.last_round_clients = self._received
        self.round += 1
        self._reset_sums()
        self._received, self._target = 0, None
        if self.on_round_end is not None:
            self.on_round_end(self)
        return changed

    # ---- resumable state ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The global model, the round, the sampler's state and the algorithm's server state.

        Raises:
            RuntimeError: called in the middle of a round (take it between rounds).
        """
        if self._received:
            raise RuntimeError("state_dict() in the middle of a round; take it between rounds")
        rng = self._rng.getstate() if isinstance(self._rng, random.Random) else random.getstate()
        return {
            "model": read_params(self._model),
            "round": self.round,
            "rng": rng,
            "unavailable": sorted(self.unavailable),
            "algorithm": self._state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (Python's global `random` too when there is no seed)."""
        write_params_(self._model, state["model"])
        self.round = int(state["round"])
        if isinstance(self._rng, random.Random):
            self._rng.setstate(state["rng"])
        else:
            random.setstate(state["rng"])
        self.unavailable = set(state["unavailable"])
        self._reset_sums()
        self._received, self._target = 0, None
        self._load_state(state["algorithm"])

"""Flower (``flwr``) strategies whose aggregation runs on fastfl's compiled kernels.

    from fastfl.interop.flower import FedAvg
    strategy = FedAvg(fraction_fit=0.1, min_fit_clients=10)   # Flower's FedAvg arguments

`FedAvg` is Flower's ``flwr.server.strategy.FedAvg`` with ``aggregate_fit`` computing the
weighted mean with `aggregate_inplace`: the clients' serialized arrays are read in place (no
per-client deserialized copy) and averaged in one compiled pass per layer. Everything else
(sampling, evaluation, metrics, failures) is Flower's own. `MessageFedAvg` does the same for
the Message API's ``flwr.serverapp.strategy.FedAvg``. Needs ``pip install fastfl[flower]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from fastfl.errors import OptionalDependencyError
from fastfl.interop.ndarrays import aggregate_ndarrays, npy_view

try:
    from flwr.app import Array, ArrayRecord
    from flwr.common import Parameters, ndarrays_to_parameters
    from flwr.common.logger import log
    from flwr.server.strategy import FedAvg as _FlowerFedAvg
    from flwr.serverapp.strategy import FedAvg as _MessageFedAvg
except ImportError as err:  # pragma: no cover - exercised only without flwr
    raise OptionalDependencyError(
        "fastfl.interop.flower needs Flower: pip install 'fastfl[flower]' (or pip install flwr)"
    ) from err

__all__ = ["FedAvg", "MessageFedAvg", "aggregate_arrayrecords", "aggregate_inplace"]


def _arrays(parameters: Parameters) -> list[np.ndarray]:
    if parameters.tensor_type not in ("numpy.ndarray", ""):
        raise ValueError(f"cannot aggregate parameters of tensor_type {parameters.tensor_type!r}")
    return [npy_view(blob) for blob in parameters.tensors]


def aggregate_inplace(
    results: list[tuple[Any, Any]], out: list[np.ndarray] | None = None
) -> list[np.ndarray]:
    """Drop-in for ``flwr.server.strategy.aggregate.aggregate_inplace``: FedAvg of ``(proxy, FitRes)``.

    Weights are the results' ``num_examples``. The result arrays are views of the received
    bytes, so the only new memory is the one output model (`out`, reusable across rounds).
    """
    arrays = [_arrays(fit_res.parameters) for _, fit_res in results]
    return aggregate_ndarrays(arrays, [fit_res.num_examples for _, fit_res in results], out=out)


class FedAvg(_FlowerFedAvg):
    """Flower's FedAvg with fastfl's aggregation (same arguments, same results up to float rounding)."""

    def aggregate_fit(
        self, server_round: int, results: list, failures: list
    ) -> tuple[Parameters | None, dict]:
        """Aggregate fit results with `aggregate_inplace`; metrics as Flower's FedAvg does."""
        if not results or (not self.accept_failures and failures):
            return None, {}
        aggregated = ndarrays_to_parameters(aggregate_inplace(results))
        metrics: dict = {}
        if self.fit_metrics_aggregation_fn:
            metrics = self.fit_metrics_aggregation_fn([(r.num_examples, r.metrics) for _, r in results])
        elif server_round == 1:  # as Flower's FedAvg: warn once
            log(logging.WARNING, "No fit_metrics_aggregation_fn provided")
        return aggregated, metrics


def aggregate_arrayrecords(records: Iterable[Any], weighting_metric_name: str) -> Any:
    """Drop-in for ``flwr.serverapp.strategy.strategy_utils.aggregate_arrayrecords`` (Message API)."""
    records = list(records)
    weights = [float(next(iter(r.metric_records.values()))[weighting_metric_name]) for r in records]
    keys: list[str] = []
    per_record = []
    for record in records:
        items = [(k, v) for ar in record.array_records.values() for k, v in ar.items()]
        if not keys:
            keys = [k for k, _ in items]
        elif [k for k, _ in items] != keys:
            raise ValueError("every reply must hold the same array names in the same order")
        per_record.append([npy_view(v.data) if v.stype == "numpy.ndarray" else v.numpy() for _, v in items])
    merged = aggregate_ndarrays(per_record, weights)
    return ArrayRecord({k: Array(a) for k, a in zip(keys, merged, strict=True)})


class MessageFedAvg(_MessageFedAvg):
    """The Message API's FedAvg (``flwr.serverapp.strategy.FedAvg``) with fastfl's aggregation."""

    def aggregate_train(self, server_round: int, replies: Iterable[Any]) -> tuple[Any, Any]:
        """Aggregate the replies' arrays with `aggregate_arrayrecords`; metrics as Flower does."""
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid:
            return None, None
        contents = [msg.content for msg in valid]
        arrays = aggregate_arrayrecords(contents, self.weighted_by_key)
        return arrays, self.train_metrics_aggr_fn(contents, self.weighted_by_key)

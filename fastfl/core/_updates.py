"""Sample counts beside an uplink: package metadata that FedLab-style code never sees (contract C4).

FedLab 1.2.1 uploads ``[params]`` (one client) or ``[params_1 ... params_K]`` (a serial trainer),
and its handler treats every tensor of a payload as one client's model. fastfl keeps exactly that
payload. The sample counts behind an update travel beside it as the package's metadata
(``package.meta``), which fastfl's client managers fill from the trainer's `uplink_meta` and the
server manager hands only to handlers that ask for it (`receive_meta`):

- ``num_samples``: the total number of samples behind the update;
- ``num_clients``: how many clients the update stands for (K; 1 when absent);
- ``n0 … n{K-1}``: each model's sample count, when the payload holds K > 1 models;
- ``uplink_delta``: set (1) by a compressed uplink (`fastfl.contrib.compressor.CompressedUplink`)
  whose model-sized tensors are deltas from the global model the client received; the server
  manager adds that global model back (`restore_uplink`) and drops the key before any handler
  sees the payload or the metadata.

A serial trainer that averages its clients locally (``aggregate=True``) uploads one model with
``num_clients = K`` and ``num_samples`` = the sum of their counts.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from fastfl.errors import UpdateFormatError

__all__ = [
    "ClientUpdate",
    "UpdateFormatError",
    "clients_in",
    "counts_meta",
    "message_parts",
    "parse_uplink",
    "restore_uplink",
    "send_with_meta",
]

NUM_SAMPLES = "num_samples"
NUM_CLIENTS = "num_clients"
UPLINK_DELTA = "uplink_delta"


@dataclass(frozen=True)
class ClientUpdate:
    """One upload, parsed.

    Attributes:
        models: flat parameter vectors; one per client, or one for K locally aggregated clients.
        counts: sample count per model (None when the client reported none).
        num_clients: how many clients the upload stands for.
    """

    models: list[Tensor]
    counts: list[float] | None
    num_clients: int


def counts_meta(counts: Sequence[float], *, aggregated: bool = False) -> dict[str, int | float]:
    """The metadata of an upload whose models have these sample counts.

    Args:
        counts: one count per trained client.
        aggregated: the upload is one model averaged over all of them (``aggregate=True``).
    """
    values = [int(c) if float(c).is_integer() else float(c) for c in counts]
    meta: dict[str, int | float] = {NUM_SAMPLES: sum(values)}
    if len(values) != 1:
        meta[NUM_CLIENTS] = len(values)
    if len(values) > 1 and not aggregated:
        meta.update({f"n{k}": v for k, v in enumerate(values)})
    return meta


def clients_in(payload: Sequence[Tensor] | None, meta: Mapping[str, float] | None) -> int:
    """How many clients an upload stands for: ``meta["num_clients"]``, else one per tensor (FedLab's rule)."""
    if meta and NUM_CLIENTS in meta:
        return int(meta[NUM_CLIENTS])
    return max(1, len(payload) if payload is not None else 1)


def _counts(meta: Mapping[str, float] | None, n_models: int) -> tuple[list[float] | None, int]:
    """(count per model or None, clients the upload stands for), read from the metadata."""
    if not meta or NUM_SAMPLES not in meta:
        return None, n_models
    num_clients = int(meta.get(NUM_CLIENTS, 1))
    if n_models == 1:
        counts = [float(meta[NUM_SAMPLES])]
    elif all(f"n{k}" in meta for k in range(n_models)):
        counts = [float(meta[f"n{k}"]) for k in range(n_models)]
    else:
        raise UpdateFormatError(
            f"the upload holds {n_models} models but its metadata has no per-model counts n0..n{n_models - 1}"
        )
    if any(c < 0 for c in counts):
        raise UpdateFormatError(f"sample counts must be >= 0, got {counts}")
    return counts, max(num_clients, n_models)


def parse_uplink(
    payload: Sequence[Tensor] | None, num_params: int, meta: Mapping[str, float] | None = None
) -> ClientUpdate:
    """Read a FedLab payload (every tensor one client's model) and its optional metadata.

    Raises:
        UpdateFormatError: the payload is empty, a model has the wrong number of elements, or the
            metadata's counts do not fit the payload.
    """
    if payload is None or len(payload) == 0:
        raise UpdateFormatError("the client sent an empty ParameterUpdate; expected [params, ...]")
    tensors = list(payload)
    for i, t in enumerate(tensors):
        if t.numel() != num_params:
            raise UpdateFormatError(
                f"uploaded tensor {i} has {t.numel()} elements but the global model has {num_params}; "
                "client and server must use the same model (every tensor of a FedLab upload is one model)"
            )
    counts, num_clients = _counts(meta, len(tensors))
    return ClientUpdate(models=[t.reshape(-1) for t in tensors], counts=counts, num_clients=num_clients)


_SENDS_META: dict[type, bool] = {}


def send_with_meta(
    network: Any, content: Any, message_code: Any, dst: int, meta: Mapping[str, float] | None
) -> None:
    """``network.send(content, message_code, dst)``, with ``meta=`` when there is some and the network takes it.

    A network whose `send` has no `meta` parameter (a user's own class, or one speaking FedLab's
    three-message format) gets FedLab's call; the metadata is then not sent.
    """
    kind = type(network)
    if kind not in _SENDS_META:
        try:
            _SENDS_META[kind] = "meta" in inspect.signature(kind.send).parameters
        except (TypeError, ValueError, AttributeError):
            _SENDS_META[kind] = False
    if meta and _SENDS_META[kind]:
        network.send(content=content, message_code=message_code, dst=dst, meta=dict(meta))
    else:
        network.send(content=content, message_code=message_code, dst=dst)


def message_parts(message: Sequence[Any]) -> tuple[int, Any, Any, dict[str, float]]:
    """``(sender, message_code, content, meta)`` of a received triple or `Message` (meta {} if none)."""
    meta = getattr(message, "meta", None)
    return message[0], message[1], message[2], dict(meta) if meta else {}


def restore_uplink(
    payload: Any, meta: dict[str, float], sent: Any, wire_dtype: Any = None
) -> tuple[Any, dict[str, float]]:
    """``(payload, meta)`` as a handler expects them: parameters, even from a delta-encoded uplink.

    Without ``meta["uplink_delta"]`` both come back unchanged (nothing is computed). With it, every
    floating tensor of the payload with as many elements as `sent` (the global model this rank was
    sent, or a callable returning it) gets that model added, and the key is dropped from `meta`.
    `wire_dtype` is the network's narrowing of floating tensors: the client received (and
    subtracted) the narrowed model, so the narrowed model is what is added back.

    Raises:
        UpdateFormatError: the upload is marked as deltas but no model was sent to this rank.
    """
    if not meta or not meta.get(UPLINK_DELTA):
        return payload, meta
    meta = {k: v for k, v in meta.items() if k != UPLINK_DELTA}
    base = sent() if callable(sent) else sent
    if not isinstance(base, Tensor):
        raise UpdateFormatError(
            "the upload holds deltas (uplink_delta) but no global model was sent to this rank"
        )
    base = base.detach().reshape(-1)
    if wire_dtype is not None and base.is_floating_point() and base.dtype != wire_dtype:
        base = base.to(wire_dtype).to(base.dtype)
    items = [payload] if isinstance(payload, Tensor) else list(payload or [])
    out = [
        (base + t.reshape(-1).to(base.dtype)).reshape(t.shape)
        if isinstance(t, Tensor) and t.is_floating_point() and t.numel() == base.numel()
        else t
        for t in items
    ]
    return out, meta

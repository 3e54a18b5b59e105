"""The uplink of a client process: models plus an optional trailing tensor of sample counts.

FedLab 1.2.1 uploads ``[params]`` (one client) or ``[params_1 ... params_K]`` (a serial trainer)
and the server averages them uniformly. fastfl clients may append one more 1-D tensor holding the
sample count of each of the K clients so that the server can weight FedAvg by them; a serial
trainer that aggregates its clients locally uploads ``[weighted mean, counts]`` (one model that
stands for K clients). A payload without the trailing tensor is FedLab's format and still works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fastfl.errors import UpdateFormatError

__all__ = ["ClientUpdate", "UpdateFormatError", "make_uplink", "parse_uplink"]


@dataclass(frozen=True)
class ClientUpdate:
    """One upload, parsed.

    Attributes:
        models: flat parameter vectors; one per client, or one for K locally aggregated clients.
        counts: sample count per client (None when the client did not report them).
        num_clients: how many clients the upload stands for.
    """

    models: list[Tensor]
    counts: list[float] | None
    num_clients: int


def make_uplink(models: Sequence[Tensor], counts: Sequence[float] | None) -> list[Tensor]:
    """Build the payload list: the models, then (if known) the counts as a float32 tensor."""
    payload = list(models)
    if counts is not None:
        payload.append(torch.tensor([float(c) for c in counts], dtype=torch.float32))
    return payload


def parse_uplink(payload: Sequence[Tensor], num_params: int) -> ClientUpdate:
    """Split a received payload into models and sample counts.

    The last tensor is read as counts when it is 1-D, its length differs from the model size,
    and the number of models before it is 1 or equal to its length.

    Raises:
        UpdateFormatError: the payload is empty, or a model has the wrong number of elements.
    """
    if payload is None or len(payload) == 0:
        raise UpdateFormatError("the client sent an empty ParameterUpdate; expected [params, ...]")
    tensors = list(payload)
    counts: list[float] | None = None
    last = tensors[-1]
    n_models = len(tensors) - 1
    if n_models >= 1 and last.dim() == 1 and last.numel() != num_params and n_models in (1, last.numel()):
        counts = [float(c) for c in last.tolist()]
        tensors = tensors[:-1]
        if any(c < 0 for c in counts):
            raise UpdateFormatError(f"sample counts must be >= 0, got {counts}")
    for i, t in enumerate(tensors):
        if t.numel() != num_params:
            raise UpdateFormatError(
                f"uploaded tensor {i} has {t.numel()} elements but the global model has {num_params}; "
                "client and server must use the same model"
            )
    num_clients = len(counts) if counts is not None else len(tensors)
    return ClientUpdate(models=[t.reshape(-1) for t in tensors], counts=counts, num_clients=num_clients)

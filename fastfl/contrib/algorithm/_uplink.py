"""The uplink of an algorithm trainer: per-client vectors, then one tensor of per-client numbers.

``[v(1,1) .. v(1,F), v(2,1) .. v(K,F), info]``: F flat vectors per client (F is fixed by the
algorithm: the trained model, or SCAFFOLD's Delta y and Delta c), then a float64 tensor of K rows
of W numbers, row k = ``[n_k, s_1, ..., s_{W-1}]`` (sample count, then the algorithm's scalars:
FedNova's tau_k, q-FedAvg's h_k). With F = W = 1 this is the stock uplink ``[models, counts]``, so
FedAvg's handler also takes fastfl's and FedLab's plain uploads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fastfl.errors import UpdateFormatError

__all__ = ["make_uplink", "parse_uplink"]


def make_uplink(vectors: Sequence[Sequence[Tensor]], info: Sequence[Sequence[float]]) -> list[Tensor]:
    """Build the payload from per-client vectors and per-client rows of numbers."""
    payload = [v for client in vectors for v in client]
    payload.append(torch.tensor([float(x) for row in info for x in row], dtype=torch.float64))
    return payload


def parse_uplink(
    payload: Sequence[Tensor], fields: int, width: int, numel: int
) -> tuple[list[list[Tensor]], list[list[float]]]:
    """Split a payload into per-client vector lists and per-client rows of numbers.

    A payload of only models (FedLab's ``[params, ...]``, F = W = 1) gets rows ``[1.0]``.

    Raises:
        UpdateFormatError: the payload does not have this algorithm's shape (the message says why).
    """
    if payload is None or len(payload) == 0:
        raise UpdateFormatError("the client sent an empty update")
    tensors = list(payload)
    if fields == 1 and width == 1 and tensors[-1].numel() == numel:
        rows = [[1.0] for _ in tensors]
        return [[t.reshape(-1)] for t in tensors], _checked(tensors, rows, numel)
    vectors, info = tensors[:-1], tensors[-1].reshape(-1)
    if len(vectors) % fields or not vectors:
        raise UpdateFormatError(
            f"this algorithm's update has {fields} vector(s) per client and one info tensor; got "
            f"{len(tensors)} tensors"
        )
    clients = len(vectors) // fields
    if info.numel() != clients * width:
        raise UpdateFormatError(
            f"the info tensor has {info.numel()} numbers; {clients} client(s) x {width} were expected "
            "(was the update made by this algorithm's trainer?)"
        )
    values = info.double().tolist()
    rows = [values[k * width : (k + 1) * width] for k in range(clients)]
    _checked(vectors, rows, numel)
    grouped = [[vectors[k * fields + f].reshape(-1) for f in range(fields)] for k in range(clients)]
    return grouped, rows


def _checked(vectors: list[Tensor], rows: list[list[float]], numel: int) -> list[list[float]]:
    for i, t in enumerate(vectors):
        if t.numel() != numel:
            raise UpdateFormatError(
                f"uploaded tensor {i} has {t.numel()} elements but the global model has {numel}; "
                "client and server must use the same model"
            )
    for k, row in enumerate(rows):
        if not row[0] >= 0:
            raise UpdateFormatError(f"client {k}'s sample count is {row[0]}; it must be >= 0")
    return rows

"""Compressed uplinks for fastfl's client managers: a trainer wrapper that encodes `uplink_package`.

`PassiveClientManager(network, trainer, compressor=TopkCompressor(0.01))` (or wrapping the trainer
yourself with `CompressedUplink(trainer, compressor)`) sends every model-sized tensor of the uplink
as the compressor's encoding of its *delta* from the global model the client received
(``local_params - received_global``), and marks the package's metadata with ``uplink_delta = 1``;
other tensors (sample counts) travel as they are. The receiving side decodes through the codec
registry and fastfl's server managers add the global model they sent back (`restore_uplink` in
fastfl.core._updates), so every handler, FedLab-style ones included, gets parameter vectors.
Error-feedback and DGC state is kept per client id (so it applies to the deltas): the ids the
server activated (a serial trainer's `id_list`, in uplink order), or 0 for a trainer of one client.

Before the trainer has received a model (no `local_process` call yet) the uplink is encoded as it
is, without the mark. docs/compression.md describes the whole path.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from torch import Tensor

from fastfl.contrib.compressor.base import Compressor
from fastfl.core._updates import UPLINK_DELTA
from fastfl.dtypes import FLOAT_DTYPES
from fastfl.errors import KernelTypeError


class CompressedUplink:
    """A trainer whose `uplink_package` travels compressed; everything else is the trainer's own.

    Args:
        trainer: a ClientTrainer, SerialTrainer or any object with their interface.
        compressor: a `fastfl.contrib.compressor` compressor.
    """

    def __init__(self, trainer: Any, compressor: Compressor) -> None:
        if not isinstance(compressor, Compressor):
            raise KernelTypeError(
                f"compressor must be a fastfl.contrib.compressor compressor, got {type(compressor).__name__}"
            )
        self.trainer = trainer
        self.compressor = compressor
        self.client_ids: list[int] = [0]
        self.received: Tensor | None = None  # the global model of the last local_process, flat

    @property
    def uplink_meta(self) -> dict[str, int | float] | None:
        """The trainer's `uplink_meta` (if any), plus ``uplink_delta = 1`` once a model was received."""
        meta = dict(getattr(self.trainer, "uplink_meta", None) or {})
        if self.received is not None:
            meta[UPLINK_DELTA] = 1
        return meta or None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trainer, name)

    @property
    def local_process(self) -> Any:
        """The trainer's `local_process` (same signature), noting the client ids it trains."""
        inner = self.trainer.local_process

        @functools.wraps(inner)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = inspect.signature(inner).bind(*args, **kwargs).arguments
            except (TypeError, ValueError):
                bound = {}
            ids = bound.get("id_list")
            self.client_ids = [int(i) for i in ids] if ids is not None else [0]
            payload = bound.get("payload", args[0] if args else None)
            self.received = _global_model(payload)
            return inner(*args, **kwargs)

        return run

    @property
    def uplink_package(self) -> list[Any]:
        """The trainer's uplink with its model-sized floating tensors encoded.

        Once a model was received they are encoded as deltas from it, and model-sized means as
        many elements as that model.
        """
        content = self.trainer.uplink_package
        items = [content] if isinstance(content, Tensor) else list(content)
        if not items:
            return items
        base = self.received
        size = base.numel() if base is not None else items[0].numel()
        out: list[Any] = []
        models = 0
        for t in items:
            if isinstance(t, Tensor) and t.dtype in FLOAT_DTYPES and t.numel() == size:
                client = self.client_ids[models] if models < len(self.client_ids) else models
                if base is not None:
                    t = t.detach().reshape(-1).sub(base.to(t.dtype)).reshape(t.shape)
                out.append(self.compressor.encode_tensor(t, client=client))
                models += 1
            else:
                out.append(t)
        return out


def _global_model(payload: Any) -> Tensor | None:
    """A flat copy of the model in a `local_process` payload (its first tensor), or None."""
    if isinstance(payload, Tensor):
        first = payload
    elif isinstance(payload, list | tuple) and payload and isinstance(payload[0], Tensor):
        first = payload[0]
    else:
        return None
    if first.dtype not in FLOAT_DTYPES:
        return None
    return first.detach().reshape(-1).clone()

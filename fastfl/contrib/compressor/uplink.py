"""Compressed uplinks for fastfl's client managers: a trainer wrapper that encodes `uplink_package`.

`PassiveClientManager(network, trainer, compressor=TopkCompressor(0.01))` (or wrapping the trainer
yourself with `CompressedUplink(trainer, compressor)`) sends every model-sized tensor of the uplink
as the compressor's `EncodedTensor` (other tensors, such as sample counts, travel as they are);
the receiving side decodes through the codec registry, so the server's handler gets ordinary
tensors. Error-feedback and DGC state is kept per client id: the ids the server activated (a serial
trainer's `id_list`, in uplink order), or 0 for a trainer of one client.

The uplink of FedLab-style trainers is the full parameter vector: a cast (`CastCompressor`) fits
it as is; sparsifiers and QSGD are meant for trainers that upload updates (deltas, gradients).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from torch import Tensor

from fastfl.contrib.compressor.base import Compressor
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trainer, name)

    @property
    def local_process(self) -> Any:
        """The trainer's `local_process` (same signature), noting the client ids it trains."""
        inner = self.trainer.local_process

        @functools.wraps(inner)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                ids = inspect.signature(inner).bind(*args, **kwargs).arguments.get("id_list")
            except (TypeError, ValueError):
                ids = None
            self.client_ids = [int(i) for i in ids] if ids is not None else [0]
            return inner(*args, **kwargs)

        return run

    @property
    def uplink_package(self) -> list[Any]:
        """The trainer's uplink with its model-sized floating tensors encoded."""
        content = self.trainer.uplink_package
        items = [content] if isinstance(content, Tensor) else list(content)
        if not items:
            return items
        size = items[0].numel()
        out: list[Any] = []
        models = 0
        for t in items:
            if isinstance(t, Tensor) and t.dtype in FLOAT_DTYPES and t.numel() == size:
                client = self.client_ids[models] if models < len(self.client_ids) else models
                out.append(self.compressor.encode_tensor(t, client=client))
                models += 1
            else:
                out.append(t)
        return out

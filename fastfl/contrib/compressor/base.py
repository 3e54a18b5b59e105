"""What every compressor shares: the encode/decode pair, flattening, checkpoints, wire wrapping."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from fastfl.dtypes import FLOAT_DTYPES
from fastfl.errors import KernelArgumentError, KernelTypeError


class Compressor:
    """An encoder/decoder pair: `encode(x, client)` -> 1-D uint8 blob, `decode(blob, shape, dtype)`.

    `code` is the wire codec the blob belongs to (fastfl.core.communicator.codecs); decoding needs
    only the blob, the shape and the dtype, so any compressor of the same codec decodes it.
    Stateful compressors (error feedback, DGC momentum, random draws) keep their state per client
    id and return it from `state_dict()`.
    """

    code = 0
    name = ""

    def encode(self, x: Tensor, client: int = 0) -> Tensor:  # pragma: no cover - abstract
        """Encode a floating tensor (client `client`'s update) into a 1-D uint8 blob."""
        raise NotImplementedError

    def decode(self, blob: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:  # pragma: no cover
        """Decode a blob into a tensor of `shape` and `dtype`."""
        raise NotImplementedError

    def encode_tensor(self, x: Tensor, client: int = 0) -> Any:
        """Encode x and wrap it as the wire's `EncodedTensor`, to place in a package's content."""
        from fastfl.core.communicator.codecs import EncodedTensor

        return EncodedTensor(self.code, tuple(x.shape), x.dtype, self.encode(x, client))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (memories, random state, epoch)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


def flat_input(x: object) -> Tensor:
    """X as a 1-D float32/float64 tensor (half types widen to float32 for the kernels).

    Raises:
        KernelTypeError: x is not a floating tensor.
    """
    if not isinstance(x, Tensor):
        raise KernelTypeError(f"a compressor encodes a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise KernelTypeError(f"a compressor encodes floating tensors, got {x.dtype}")
    flat = x.detach().reshape(-1)
    return flat.float() if x.dtype in (torch.float16, torch.bfloat16) else flat.contiguous()


def check_ratio(ratio: object, name: str = "ratio") -> float:
    """A fraction of elements to keep, in (0, 1]."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 < float(ratio) <= 1.0:
        raise KernelArgumentError(
            f"{name} is the fraction of elements kept, in (0, 1]; got {ratio!r} (FedLab's r > 1 means 1/r)"
        )
    return float(ratio)


def keep_count(ratio: float, n: int) -> int:
    """ceil(ratio * n) elements, at least one of a non-empty tensor.

    The product is rounded to 6 decimals first, so binary fractions do not add one: 0.07 * 100
    is 7.000000000000001 in float64, and keeps 7.
    """
    return min(n, max(1 if n else 0, math.ceil(round(ratio * n, 6))))


def seeded(seed: object) -> torch.Generator:
    """A CPU generator seeded with `seed` (an integer >= 0)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise KernelArgumentError(f"seed must be an integer >= 0, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def check_value_dtype(dtype: object) -> torch.dtype | None:
    """The dtype values travel in (None: the input's float32/float64)."""
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise KernelTypeError(f"value_dtype must be None or a floating dtype, got {dtype!r}")
    return dtype  # type: ignore[return-value]

"""fp16/bf16 casting: the wire's dtype narrowing (`Package(wire_dtype=...)`) as a compressor.

A cast needs no codec: the narrowed tensor itself travels (codec 0, dtype float16/bfloat16 in the
tensor table) at half the bytes of float32, and the receiver widens it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastfl import ops
from fastfl.contrib.compressor.base import Compressor
from fastfl.dtypes import FLOAT_DTYPES, HALF_DTYPES
from fastfl.errors import KernelTypeError


class CastCompressor(Compressor):
    """Round to float16 or bfloat16 (nearest even) on encode; widen back on decode.

    Args:
        dtype: torch.float16 or torch.bfloat16.
    """

    code = 0

    def __init__(self, dtype: torch.dtype = torch.float16) -> None:
        if dtype not in HALF_DTYPES:
            raise KernelTypeError(f"dtype must be torch.float16 or torch.bfloat16, got {dtype!r}")
        self.dtype = dtype
        self.name = "fp16" if dtype == torch.float16 else "bf16"

    def encode(self, x: Tensor, client: int = 0) -> Tensor:
        """X rounded to the narrow dtype (same shape): what travels on the wire."""
        if not isinstance(x, Tensor) or x.dtype not in FLOAT_DTYPES:
            raise KernelTypeError(
                f"CastCompressor encodes floating tensors, got {getattr(x, 'dtype', type(x))}"
            )
        return ops.cast(x.detach().contiguous(), self.dtype)

    def decode(self, blob: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """Widen the narrow tensor back to `dtype` and `shape`."""
        return ops.cast(blob.contiguous(), dtype).view(tuple(shape))

    def encode_tensor(self, x: Tensor, client: int = 0) -> Tensor:
        """The narrowed tensor itself: a plain tensor in a package is all a cast needs."""
        return self.encode(x, client)

"""QSGD (Alistarh et al., NeurIPS 2017): s levels of the L2 norm, stochastic rounding, packed codes."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from fastfl.contrib.compressor import _blob
from fastfl.contrib.compressor.base import Compressor, flat_input, seeded
from fastfl.errors import KernelArgumentError
from fastfl.ops import compress as kc


class QSGDCompressor(Compressor):
    """QSGD with the paper's L2 norm and bit-packed codes.

    Q_s(v)_i = ||v||_2 * sign(v_i) * l_i / s with l_i = floor(|v_i| s/||v||_2) rounded up with
    probability equal to the fraction: unbiased, E||Q(v) - v||^2 <= min(n/s^2, sqrt(n)/s) ||v||^2.

    Unlike FedLab 1.3's QSGDCompressor it uses the paper's L2 norm (not max|v|), returns zeros for
    a zero vector (not NaN), and packs each code into 1 + bit_length(s) bits (s=127: one byte per
    element, a quarter of float32) instead of sending int32 levels and bool signs.

    `s` is keyword-only: FedLab 1.3's first argument is `n_bit` (its s = 2**n_bit), so a positional
    FedLab-style call fails instead of meaning something else.

    Args:
        s: quantization levels, 1..32767.
        seed: seeds the generator that draws each encode's rounding seed (saved in state_dict).
    """

    code = 1
    name = "qsgd"

    def __init__(self, *, s: int = 127, seed: int = 0) -> None:
        if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= kc.MAX_LEVELS:
            raise KernelArgumentError(
                f"s (QSGD levels) must be an integer in [1, {kc.MAX_LEVELS}], got {s!r}"
            )
        self.s = s
        self.generator = seeded(seed)

    def encode(self, x: Tensor, client: int = 0) -> Tensor:
        """Quantize x (any floating dtype and shape) into a qsgd blob."""
        flat = flat_input(x)
        norm = math.sqrt(kc.sum_squares(flat))
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        return _blob.qsgd_blob(flat, self.s, norm, seed)

    def decode(self, blob: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """Dequantize a qsgd blob into a tensor of `shape` and `dtype`."""
        return _blob.qsgd_unblob(blob, shape, dtype)

    def state_dict(self) -> dict[str, Any]:
        """The generator's state."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator's state."""
        self.generator.set_state(state["generator"])

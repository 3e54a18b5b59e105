"""StreamingAggregator: the weighted mean of updates that arrive one at a time, in O(model) memory.

A server that receives K client updates does not need to keep K copies: each update is added to one
accumulator (acc += w·x, one kernel call) as it arrives, and after the last one the mean
acc / Σw is written into a caller's buffer (for example the global model's flat vector).

The accumulator is float64 by default. With it the result, rounded to float32, does not depend on
the arrival order except in rare last-bit ties, and it is closer to the exact mean than a float32
running sum (tests/utils/test_streaming.py measures both). For a fixed order the result is bitwise
reproducible: every step is a deterministic elementwise kernel.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

from fastfl import ops
from fastfl.dtypes import FLOAT_DTYPES
from fastfl.errors import KernelArgumentError, KernelTypeError

__all__ = ["StreamingAggregator"]

ACC_DTYPES = (torch.float32, torch.float64)


class StreamingAggregator:
    """Accumulate weighted updates one at a time; write their weighted mean into a buffer.

    Example:
        >>> agg = StreamingAggregator()
        >>> for update, n_samples in arrivals:
        ...     agg.add(update, n_samples)
        >>> agg.write_(global_flat)  # global_flat = Σ n·update / Σ n
        >>> agg.reset()              # next round; the accumulator's memory is reused

    Args:
        numel: the update size; None takes it from the first `add`.
        acc_dtype: torch.float64 (default; order-independent in practice) or torch.float32.
        device: where the accumulator lives; None takes the first update's device.

    `add` may be called from several threads (a lock serialises the accumulation).
    """

    def __init__(
        self,
        numel: int | None = None,
        *,
        acc_dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        if acc_dtype not in ACC_DTYPES:
            raise KernelTypeError(f"acc_dtype must be torch.float32 or torch.float64, got {acc_dtype}")
        if numel is not None and (not isinstance(numel, int) or numel < 0):
            raise KernelArgumentError(f"numel must be a non-negative int or None, got {numel!r}")
        self.acc_dtype = acc_dtype
        self._numel = numel
        self._device = torch.device(device) if device is not None else None
        self._acc: Tensor | None = None
        self._result_dtype = torch.float32
        self._lock = threading.Lock()
        self.count = 0
        self.total_weight = 0.0

    @property
    def numel(self) -> int | None:
        """The update size (None until it is known)."""
        return self._numel

    def reset(self) -> None:
        """Forget all updates (keep the size and the accumulator's memory for the next round)."""
        with self._lock:
            self.count = 0
            self.total_weight = 0.0
            self._result_dtype = torch.float32

    def add(self, update: Tensor, weight: float = 1.0) -> None:
        """Add `weight · update` to the running sum.

        Args:
            update: a floating tensor (any shape) of `numel` elements.
            weight: a finite, non-negative number (e.g. the client's sample count).

        Raises:
            ValueError: wrong size, negative or non-finite weight, or another device than before.
            TypeError: `update` is not a floating tensor.
        """
        if not isinstance(update, Tensor):
            raise KernelTypeError(f"update must be a torch.Tensor, got {type(update).__name__}")
        if update.dtype not in FLOAT_DTYPES:
            raise KernelTypeError(f"update has dtype {update.dtype}; expected a floating dtype")
        w = _weight(weight)
        with self._lock:
            acc = self._accumulator(update)
            if self.count == 0:
                acc.zero_()
            ops.accumulate_(acc, update.contiguous().view(-1), w)
            self._result_dtype = torch.promote_types(self._result_dtype, update.dtype)
            self.count += 1
            self.total_weight += w

    def result(self, *, out: Tensor | None = None) -> Tensor:
        """Return the weighted mean: into `out` if given, else a new 1-D tensor.

        The new tensor is float32, or float64 if a float64 update was added (as FedAvg promotes).
        """
        if out is None:
            numel = self._numel if self._numel is not None else 0
            out = ops.empty(numel, dtype=self._result_dtype, device=self._device)
        return self.write_(out)

    def write_(self, out: Tensor) -> Tensor:
        """Write Σ wᵢ·updateᵢ / Σ wᵢ into `out` (any floating dtype, `numel` elements); return it.

        Raises:
            ValueError: no update was added, the weights sum to zero, or `out` has the wrong size.
        """
        with self._lock:
            if self.count == 0 or self._acc is None:
                raise KernelArgumentError("no update was added; call add() before result()/write_()")
            if self.total_weight <= 0.0:
                raise KernelArgumentError(
                    f"the {self.count} added updates have total weight 0; give one a positive weight"
                )
            if not isinstance(out, Tensor):
                raise KernelTypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
            if out.numel() != self._acc.numel():
                raise KernelArgumentError(
                    f"out has {out.numel()} elements but the updates have {self._acc.numel()}"
                )
            if out.dtype not in FLOAT_DTYPES:
                raise KernelTypeError(f"out has dtype {out.dtype}; expected a floating dtype")
            if not out.is_contiguous():
                raise KernelArgumentError("out is not contiguous; pass a contiguous buffer")
            scale = 1.0 / self.total_weight
            flat = out.view(-1)
            if out.dtype in ACC_DTYPES:
                ops.weighted_sum([self._acc], [scale], out=flat, acc_dtype=self.acc_dtype)
            else:
                mean = ops.weighted_sum([self._acc], [scale], acc_dtype=self.acc_dtype)
                ops.cast(mean, out.dtype, out=flat)
            return out

    def _accumulator(self, update: Tensor) -> Tensor:
        """Return the accumulator, allocating it at the first update; check size and device."""
        if self._numel is None:
            self._numel = update.numel()
        if update.numel() != self._numel:
            raise KernelArgumentError(
                f"update has {update.numel()} elements but this aggregator takes {self._numel}"
            )
        if self._device is None:
            self._device = update.device
        if update.device != self._device:
            raise KernelArgumentError(
                f"update is on {update.device} but the accumulator is on {self._device}; move it there"
            )
        if self._acc is None:
            self._acc = torch.zeros(self._numel, dtype=self.acc_dtype, device=self._device)
        return self._acc


def _weight(weight: float) -> float:
    try:
        w = float(weight)
    except (TypeError, ValueError) as err:
        raise KernelTypeError(f"weight must be a number, got {type(weight).__name__}") from err
    if not math.isfinite(w) or w < 0:
        raise KernelArgumentError(f"weight is {weight}; it must be finite and non-negative")
    return w

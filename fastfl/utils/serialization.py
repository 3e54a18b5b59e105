"""SerializationTool: a model's tensors to one flat vector and back, in one kernel call per direction.

FedLab 1.2.1's names and results (parameters in `model.parameters()` order, output on the CPU),
plus: a cached layout per model, an `out=` buffer that can be reused across calls, an option to
include buffers such as BatchNorm statistics (FedLab issue #231), and length checks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fastfl import ops
from fastfl.dtypes import CODES, FLOAT_DTYPES
from fastfl.errors import KernelArgumentError, KernelTypeError
from fastfl.utils._layout import Layout, cached_layout, layout_of

__all__ = ["SerializationTool"]

MODES = ("copy", "add", "sub")
PLAN_MODES = {"copy": 0, "add": 1, "sub": -1}
CPU = torch.device("cpu")


def _plan_ready(layout: Layout | None, buf: Tensor) -> bool:
    """True when `layout`'s compiled plan may copy to or from `buf` (a checked tensor)."""
    return (
        layout is not None
        and layout.plan is not None
        and buf.numel() == layout.numel
        and buf.is_cpu
        and buf.is_contiguous()
        and ops.native_core() is not None
    )


def _plan_unflatten(model: nn.Module, layout: Layout | None, flat: Tensor, mode: str) -> bool:
    """Write `flat` into the model through the layout's plan; False when it cannot.

    The plan re-checks the model first: if anything changed since the layout was built, it copies
    nothing and returns False.
    """
    code = CODES.get(flat.dtype)
    if code is None or not _plan_ready(layout, flat):
        return False
    return bool(layout.plan.unflatten(model, flat, int(code), PLAN_MODES[mode], ops.native_threads()))


def _plan_flatten(model: nn.Module, layout: Layout | None, out: Tensor) -> bool:
    """Copy the model into `out` through the layout's plan; False when it cannot (see above)."""
    if not _plan_ready(layout, out):
        return False
    return bool(layout.plan.flatten(model, out, int(CODES[out.dtype]), ops.native_threads()))


def _check_out(out: object, numel: int, what: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise KernelTypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
    if out.dim() != 1 or out.numel() != numel or not out.is_contiguous():
        raise KernelArgumentError(
            f"out must be a contiguous 1-D tensor of {numel} elements (the {what}), "
            f"got shape {tuple(out.shape)}"
        )
    if out.dtype not in FLOAT_DTYPES:
        raise KernelTypeError(f"out has dtype {out.dtype}; use a floating dtype ({FLOAT_DTYPES})")
    return out


def _check_dtype(dtype: object) -> None:
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise KernelTypeError(f"dtype must be None or one of {FLOAT_DTYPES}, got {dtype!r}")


def _gather(srcs: list[Tensor], layout: Layout, out: Tensor | None, dtype: torch.dtype | None) -> Tensor:
    """Flatten `srcs` (on the layout's device) into `out`, or into a new CPU tensor."""
    if not layout.contiguous:
        srcs = [t.contiguous() for t in srcs]
    device = layout.device or CPU
    if out is not None and out.device == device:
        return ops.flatten(srcs, out=out)
    if out is not None:  # e.g. a CUDA model and a CPU buffer: gather on the device, then copy once
        out.copy_(ops.flatten(srcs, dtype=out.dtype))
        return out
    kind = dtype or layout.dtype
    if device == CPU:
        return ops.flatten(srcs, out=ops.empty(layout.numel, dtype=kind))
    return ops.flatten(srcs, dtype=kind).cpu()


class SerializationTool:
    """Static methods that turn a model into one flat vector and back (FedLab's public name)."""

    @staticmethod
    def serialize_model(
        model: nn.Module,
        *,
        include_buffers: bool = False,
        out: Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Concatenate the model's parameters (and optionally buffers) into one flat vector.

        Args:
            model: the model to read.
            include_buffers: also pack the persistent buffers (BatchNorm running statistics and
                `num_batches_tracked`) after the parameters: floating buffers first, then integer
                ones, which are stored as values of the vector's floating dtype (exact up to 2**24
                in float32).
            out: a contiguous 1-D floating buffer of the right length to write into (reuse it
                across calls: a fresh buffer costs page faults, about 5x a copy). It may be on any
                device; values are cast to its dtype.
            dtype: dtype of the new vector when `out` is None (default: the parameters' dtype,
                promoted across parameters if they differ).

        Returns:
            `out`, or a new CPU tensor (as FedLab, also for CUDA models).
        """
        _check_dtype(dtype)
        layout = cached_layout(model, include_buffers)
        if layout is not None and layout.plan is not None:  # one compiled call re-checks and copies
            if out is not None:
                _check_out(out, layout.numel, "model's element count")
                if _plan_flatten(model, layout, out):
                    return out
            else:
                fresh = ops.empty(layout.numel, dtype=dtype or layout.dtype)
                if _plan_flatten(model, layout, fresh):
                    return fresh
        layout = layout_of(model, include_buffers)
        if out is not None:
            _check_out(out, layout.numel, "model's element count")
        return _gather(list(layout.tensors), layout, out, dtype)

    @staticmethod
    def serialize_model_gradients(
        model: nn.Module,
        *,
        zero_missing: bool = False,
        out: Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Concatenate the gradients of the model's parameters into one flat vector.

        Args:
            model: the model whose `.grad`s to read.
            zero_missing: treat a parameter whose `.grad` is None as a zero gradient instead of
                raising (parameters unused in the last backward pass).
            out: as in `serialize_model`.
            dtype: as in `serialize_model`.

        Raises:
            ValueError: a parameter has no gradient and `zero_missing` is False.
        """
        _check_dtype(dtype)
        layout = layout_of(model, include_buffers=False)
        if out is not None:
            _check_out(out, layout.numel, "model's parameter count")
        grads = []
        for name, param, alias in zip(layout.names, layout.sources, layout.tensors, strict=True):
            grad = param.grad
            if grad is None:
                if not zero_missing:
                    raise KernelArgumentError(
                        f"parameter {name!r} has no gradient (.grad is None); run backward() first, "
                        "or pass zero_missing=True to serialize it as zeros"
                    )
                grad = torch.zeros_like(alias)
            grads.append(grad.detach().contiguous())
        return _gather(grads, layout, out, dtype)

    @staticmethod
    def deserialize_model(
        model: nn.Module,
        serialized_parameters: Tensor,
        mode: str = "copy",
        *,
        include_buffers: bool = False,
    ) -> None:
        """Write a flat vector into the model's parameters (and optionally buffers), in place.

        Args:
            model: the model to write into.
            serialized_parameters: a vector of exactly the layout's element count, as made by
                `serialize_model` with the same `include_buffers` (any floating dtype and device).
            mode: "copy" replaces the values, "add" adds the vector to them, "sub" subtracts it.
                In "add" and "sub" integer buffers (`num_batches_tracked`) are left unchanged:
                a count is not a quantity that deltas are added to. In "copy" they are set.
            include_buffers: the vector also holds the persistent buffers.

        Raises:
            ValueError: unknown mode, or the vector's length does not match the model.
            TypeError: `serialized_parameters` is not a tensor.
        """
        if mode not in MODES:
            raise KernelArgumentError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        flat = serialized_parameters
        if not isinstance(flat, Tensor):
            raise KernelTypeError(f"serialized_parameters must be a torch.Tensor, got {type(flat).__name__}")
        if _plan_unflatten(model, cached_layout(model, include_buffers), flat, mode):
            return  # the compiled plan found the model unchanged and wrote it in one call
        layout = layout_of(model, include_buffers)
        if flat.numel() != layout.numel:
            what = "parameters and buffers" if include_buffers else "parameters"
            raise KernelArgumentError(
                f"serialized_parameters has {flat.numel()} elements but the model's {what} hold "
                f"{layout.numel}; serialize and deserialize the same architecture "
                "with the same include_buffers"
            )
        flat = flat.reshape(-1)
        if layout.device is not None and flat.device != layout.device:
            flat = flat.to(layout.device)
        flat = flat.contiguous()
        if _plan_unflatten(model, layout, flat, mode):
            return
        dsts = list(layout.tensors)
        if mode != "copy":  # integer buffers come last in the layout; skip them
            dsts = [t for t in dsts if t.is_floating_point()]
            flat = flat[: layout.float_numel]
        if layout.contiguous:
            ops.unflatten_(flat, dsts, mode=mode)
            return
        staged = [t if t.is_contiguous() else t.contiguous() for t in dsts]
        ops.unflatten_(flat, staged, mode=mode)
        for dst, tmp in zip(dsts, staged, strict=True):
            if tmp is not dst:
                dst.copy_(tmp)

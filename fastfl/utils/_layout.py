"""The flat layout of a model's tensors, computed once per model and cached until the model changes.

A layout lists the tensors that `SerializationTool` packs into one flat buffer, in order:
the parameters (in `model.parameters()` order, as FedLab 1.2.1), then, when buffers are included,
the floating persistent buffers, then the integer and bool persistent buffers (in `model.buffers()`
order). Putting the parameters first makes the parameter vector a prefix of the vector with
buffers; putting integer buffers last lets "add"/"sub" skip them with a single kernel call.

The cache is keyed weakly by the model. On every call a cheap fingerprint (tensor identity,
storage address, shape, dtype, device, contiguity) is compared with the cached one, so replacing
`param.data`, moving or casting the model, or adding a module rebuilds the layout.

With the native backend, a contiguous CPU layout also carries a compiled plan (`_C.FlatPlan`):
one call that walks the model, compares that fingerprint in full and, only if nothing changed,
copies between the flat buffer and the tensors. `SerializationTool` calls it first and falls back
to rebuilding the layout when it reports a change, so a stale layout is never used.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import reduce
from typing import Any

import torch
from torch import Tensor, nn

from fastfl import ops
from fastfl.dtypes import CODES, FLOAT_DTYPES

_State = tuple[int, torch.Size, torch.dtype, bool]
FLAT_PLAN_ABI = 1  # the version of _C.FlatPlan this module speaks (an older _C has none: no plans)


@dataclass(frozen=True)
class Layout:
    """The tensors of one model in flat order, with what serialization needs to know about them.

    Attributes:
        names: qualified names (`"fc.weight"`, `"bn.running_mean"`), for error messages.
        sources: the parameter and buffer objects themselves (to reach `.grad`).
        tensors: detached aliases of their storage (writes land in the model).
        numel: total element count.
        float_numel: element count of the floating tensors, which come first.
        device: the device of the first tensor (None for a model without tensors).
        dtype: the default dtype of the flat buffer: the promotion of the floating dtypes.
        contiguous: True when every tensor is contiguous (the fast path).
        states: storage address, shape, dtype and contiguity of each source when the layout
            was built; `layout_of` compares them to decide whether the cache is still valid.
        plan: the compiled plan of a contiguous CPU layout (native backend), else None.
    """

    names: tuple[str, ...]
    sources: tuple[Tensor, ...]
    tensors: tuple[Tensor, ...]
    numel: int
    float_numel: int
    device: torch.device | None
    dtype: torch.dtype
    contiguous: bool
    states: tuple[_State, ...]
    plan: Any = None


_cache: weakref.WeakKeyDictionary[nn.Module, dict[bool, Layout]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _walk(model: nn.Module, include_buffers: bool, named: bool) -> list[tuple[str, Tensor]]:
    """The model's tensors in layout order, each once; names only if `named` (else "")."""
    params, buffers = _walk_parts(model, include_buffers, named)
    floats = [e for e in buffers if e[1].is_floating_point()]
    return params + floats + [e for e in buffers if not e[1].is_floating_point()]


def _walk_parts(
    model: nn.Module, include_buffers: bool, named: bool
) -> tuple[list[tuple[str, Tensor]], list[tuple[str, Tensor]]]:
    """The parameters and the persistent buffers, each once, in the order the model holds them.

    One pass over the modules, in `model.modules()` order: the parameters come out in
    `model.parameters()` order and the persistent buffers (those in the state_dict) in
    `model.buffers()` order.
    """
    params: list[tuple[str, Tensor]] = []
    buffers: list[tuple[str, Tensor]] = []
    seen: set[int] = set()
    modules = model.named_modules() if named else (("", m) for m in model.modules())
    for prefix, module in modules:
        dot = f"{prefix}." if prefix else ""
        for name, p in module._parameters.items():
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                params.append((dot + name if named else "", p))
        if not include_buffers:
            continue
        skip = module._non_persistent_buffers_set
        for name, b in module._buffers.items():
            if b is not None and name not in skip and id(b) not in seen:
                seen.add(id(b))
                buffers.append((dot + name if named else "", b))
    return params, buffers


def _state(t: Tensor) -> _State:
    return (t.data_ptr(), t.shape, t.dtype, t.is_contiguous())


def _still_valid(layout: Layout, current: list[tuple[str, Tensor]]) -> bool:
    """True if `current` holds the same tensor objects, with the same storage, shape, dtype, layout.

    The storage address also tells devices apart (CUDA's unified address space), so moving,
    casting or replacing `param.data` all show up here.
    """
    if len(current) != len(layout.sources):
        return False
    for (_, t), src, state in zip(current, layout.sources, layout.states, strict=True):
        if t is not src or _state(t) != state:
            return False
    return True


def _build(model: nn.Module, include_buffers: bool) -> Layout:
    params, buffers = _walk_parts(model, include_buffers, named=True)
    floats = [e for e in buffers if e[1].is_floating_point()]
    entries = params + floats + [e for e in buffers if not e[1].is_floating_point()]
    sources = tuple(t for _, t in entries)
    float_dtypes = [t.dtype for t in sources if t.dtype in FLOAT_DTYPES]
    dtype = reduce(torch.promote_types, float_dtypes) if float_dtypes else torch.float32
    tensors = tuple(t.detach() for t in sources)
    contiguous = all(t.is_contiguous() for t in sources)
    device = sources[0].device if sources else None
    plan = None
    if contiguous and device is not None and device.type == "cpu":
        plan = _plan(model, include_buffers, sources, tensors, [t for _, t in params + buffers])
    return Layout(
        names=tuple(n for n, _ in entries),
        sources=sources,
        tensors=tensors,
        numel=sum(t.numel() for t in sources),
        float_numel=sum(t.numel() for t in sources if t.is_floating_point()),
        device=device,
        dtype=dtype,
        contiguous=contiguous,
        states=tuple(_state(t) for t in sources),
        plan=plan,
    )


def _plan(
    model: nn.Module,
    include_buffers: bool,
    sources: tuple[Tensor, ...],
    tensors: tuple[Tensor, ...],
    walked: list[Tensor],
) -> Any:
    """The compiled plan of a contiguous CPU layout, or None.

    None when there is no native core, or when the plan's walk of the model does not meet the
    tensors Python's walk met (a module that overrides its traversal): such a layout is then
    re-checked in Python on every call.
    """
    core = ops.native_core()
    if getattr(core, "FLAT_PLAN_ABI", None) != FLAT_PLAN_ABI or any(t.dtype not in CODES for t in sources):
        return None
    flat_plan = core.FlatPlan
    try:
        plan = flat_plan(model, include_buffers, sources, tensors, [int(CODES[t.dtype]) for t in sources])
        seen = plan.walked(model)
    except ValueError:
        return None
    if len(seen) != len(walked) or any(a is not b for a, b in zip(seen, walked, strict=True)):
        return None
    return plan


def layout_of(model: nn.Module, include_buffers: bool = False) -> Layout:
    """Return the layout of `model`, from the cache when the model has not changed since.

    Raises:
        TypeError: `model` is not a torch.nn.Module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layout = cached_layout(model, include_buffers)
    if layout is not None:
        if layout.plan is not None:
            if layout.plan.valid(model):
                return layout
        elif _still_valid(layout, _walk(model, include_buffers, named=False)):
            return layout
    layout = _build(model, include_buffers)
    with _lock:
        _cache.setdefault(model, {})[include_buffers] = layout
    return layout


def cached_layout(model: object, include_buffers: bool) -> Layout | None:
    """The layout cached for `model`, not re-checked (its plan re-checks itself), or None."""
    if not isinstance(model, nn.Module):
        return None
    found = _cache.get(model)
    return None if found is None else found.get(include_buffers)


def cached_layouts(model: nn.Module) -> int:
    """Return how many layouts are cached for `model` (for tests)."""
    return len(_cache.get(model, {}))

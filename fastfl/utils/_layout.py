"""The flat layout of a model's tensors, computed once per model and cached until the model changes.

A layout lists the tensors that `SerializationTool` packs into one flat buffer, in order:
the parameters (in `model.parameters()` order, as FedLab 1.2.1), then, when buffers are included,
the floating persistent buffers, then the integer and bool persistent buffers (in `model.buffers()`
order). Putting the parameters first makes the parameter vector a prefix of the vector with
buffers; putting integer buffers last lets "add"/"sub" skip them with a single kernel call.

The cache is keyed weakly by the model. On every call a cheap fingerprint (tensor identity,
storage address, shape, dtype, device, contiguity) is compared with the cached one, so replacing
`param.data`, moving or casting the model, or adding a module rebuilds the layout.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import reduce

import torch
from torch import Tensor, nn

from fastfl.dtypes import FLOAT_DTYPES

_State = tuple[int, torch.Size, torch.dtype, bool]


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


_cache: weakref.WeakKeyDictionary[nn.Module, dict[bool, Layout]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _walk(model: nn.Module, include_buffers: bool, named: bool) -> list[tuple[str, Tensor]]:
    """The model's tensors in layout order, each once; names only if `named` (else "").

    One pass over the modules, in `model.modules()` order: the parameters come out in
    `model.parameters()` order and the persistent buffers (those in the state_dict) in
    `model.buffers()` order.
    """
    params: list[tuple[str, Tensor]] = []
    floats: list[tuple[str, Tensor]] = []
    others: list[tuple[str, Tensor]] = []
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
                (floats if b.is_floating_point() else others).append((dot + name if named else "", b))
    return params + floats + others


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
    entries = _walk(model, include_buffers, named=True)
    sources = tuple(t for _, t in entries)
    floats = [t.dtype for t in sources if t.dtype in FLOAT_DTYPES]
    dtype = reduce(torch.promote_types, floats) if floats else torch.float32
    return Layout(
        names=tuple(n for n, _ in entries),
        sources=sources,
        tensors=tuple(t.detach() for t in sources),
        numel=sum(t.numel() for t in sources),
        float_numel=sum(t.numel() for t in sources if t.is_floating_point()),
        device=sources[0].device if sources else None,
        dtype=dtype,
        contiguous=all(t.is_contiguous() for t in sources),
        states=tuple(_state(t) for t in sources),
    )


def layout_of(model: nn.Module, include_buffers: bool = False) -> Layout:
    """Return the layout of `model`, from the cache when the model has not changed since.

    Raises:
        TypeError: `model` is not a torch.nn.Module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    cached = _cache.get(model)
    layout = cached.get(include_buffers) if cached is not None else None
    if layout is not None and _still_valid(layout, _walk(model, include_buffers, named=False)):
        return layout
    layout = _build(model, include_buffers)
    with _lock:
        _cache.setdefault(model, {})[include_buffers] = layout
    return layout


def cached_layouts(model: nn.Module) -> int:
    """Return how many layouts are cached for `model` (for tests)."""
    return len(_cache.get(model, {}))

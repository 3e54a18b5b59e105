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

_Fingerprint = tuple[tuple[int, int, torch.Size, torch.dtype, torch.device, bool], ...]


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
        fingerprint: what `layout_of` compares to decide whether the cache is still valid.
    """

    names: tuple[str, ...]
    sources: tuple[Tensor, ...]
    tensors: tuple[Tensor, ...]
    numel: int
    float_numel: int
    device: torch.device | None
    dtype: torch.dtype
    contiguous: bool
    fingerprint: _Fingerprint


_cache: weakref.WeakKeyDictionary[nn.Module, dict[bool, Layout]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _persistent_buffers(model: nn.Module) -> list[tuple[str, Tensor]]:
    """Return the persistent buffers (those in the state_dict), each once, in `model.buffers()` order."""
    found: list[tuple[str, Tensor]] = []
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        skip = module._non_persistent_buffers_set
        for name, buf in module._buffers.items():
            if buf is None or name in skip or id(buf) in seen:
                continue
            seen.add(id(buf))
            found.append((f"{prefix}.{name}" if prefix else name, buf))
    return found


def _entries(model: nn.Module, include_buffers: bool) -> list[tuple[str, Tensor]]:
    entries = list(model.named_parameters())
    if include_buffers:
        buffers = _persistent_buffers(model)
        entries += [nb for nb in buffers if nb[1].is_floating_point()]
        entries += [nb for nb in buffers if not nb[1].is_floating_point()]
    return entries


def _fingerprint(tensors: list[Tensor]) -> _Fingerprint:
    return tuple((id(t), t.data_ptr(), t.shape, t.dtype, t.device, t.is_contiguous()) for t in tensors)


def _current_tensors(model: nn.Module, include_buffers: bool) -> list[Tensor]:
    """The model's tensors in layout order, without building names (the per-call cheap path)."""
    tensors = list(model.parameters())
    if include_buffers:
        buffers = [b for _, b in _persistent_buffers(model)]
        tensors += [b for b in buffers if b.is_floating_point()]
        tensors += [b for b in buffers if not b.is_floating_point()]
    return tensors


def _build(model: nn.Module, include_buffers: bool) -> Layout:
    entries = _entries(model, include_buffers)
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
        fingerprint=_fingerprint(list(sources)),
    )


def layout_of(model: nn.Module, include_buffers: bool = False) -> Layout:
    """Return the layout of `model`, from the cache when the model has not changed since.

    Raises:
        TypeError: `model` is not a torch.nn.Module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    current = _fingerprint(_current_tensors(model, include_buffers))
    cached = _cache.get(model)
    if cached is not None:
        layout = cached.get(include_buffers)
        if layout is not None and layout.fingerprint == current:
            return layout
    layout = _build(model, include_buffers)
    with _lock:
        _cache.setdefault(model, {})[include_buffers] = layout
    return layout


def cached_layouts(model: nn.Module) -> int:
    """Return how many layouts are cached for `model` (for tests)."""
    return len(_cache.get(model, {}))

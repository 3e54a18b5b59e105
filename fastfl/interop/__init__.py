"""fastfl's kernels inside other frameworks: `fastfl.interop.flower` (Flower strategies and helpers)."""

from __future__ import annotations

from fastfl.interop.ndarrays import aggregate_ndarrays, npy_view

__all__ = ["aggregate_ndarrays", "npy_view"]

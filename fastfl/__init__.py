"""fastfl: federated learning for PyTorch with FedLab 1.2.1's API and a compiled core."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "backend"]


def backend() -> str:
    """Return the name of the kernel backend in use: "native", "numba" or "torch"."""
    from fastfl import ops

    return ops.backend()

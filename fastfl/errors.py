"""The exceptions fastfl raises: one base class, subclasses that also inherit the builtin."""

from __future__ import annotations


class FastFLError(Exception):
    """Base class of every error fastfl raises on purpose."""


class BackendError(FastFLError, ImportError):
    """The requested kernel backend cannot be loaded (missing or stale extension, numba absent)."""


class KernelArgumentError(FastFLError, ValueError):
    """A kernel argument has the wrong size, layout, device or value."""


class KernelTypeError(FastFLError, TypeError):
    """A kernel argument has an unsupported type or dtype."""


class WireFormatError(FastFLError, ValueError):
    """Bytes received from the network do not form a valid package."""


class CommunicationError(FastFLError, RuntimeError):
    """A peer did not answer in time, disconnected, or broke the protocol."""


class CommunicationTimeout(CommunicationError, TimeoutError):
    """A network wait ran past its deadline."""

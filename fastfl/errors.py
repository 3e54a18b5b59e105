"""The exceptions fastfl raises: one base class, subclasses that also inherit the builtin."""

from __future__ import annotations


class FastFLError(Exception):
    """Base class of every error fastfl raises on purpose."""


# Kernels and their backends.
class BackendError(FastFLError, ImportError):
    """The requested kernel backend cannot be loaded (missing or stale extension, numba absent)."""


class KernelArgumentError(FastFLError, ValueError):
    """A kernel argument has the wrong size, layout, device or value."""


class KernelTypeError(FastFLError, TypeError):
    """A kernel argument has an unsupported type or dtype."""


# Communication.
class WireFormatError(FastFLError, ValueError):
    """Bytes received from the network do not form a valid package."""


class CommunicationError(FastFLError, RuntimeError):
    """A peer did not answer in time, disconnected, or broke the protocol."""


class CommunicationTimeout(CommunicationError, TimeoutError):
    """A network wait ran past its deadline."""


# FL roles.
class CoordinatorError(FastFLError, ValueError):
    """A client id is outside the range the coordinator knows, or the setup is invalid."""


class UpdateFormatError(FastFLError, ValueError):
    """An uploaded payload does not have the shape of a client update."""


class DeviceUnavailableError(FastFLError, RuntimeError):
    """A CUDA device was asked for but none is available."""


# Data sets and partitioning.
class LeafDataMissingError(FastFLError, FileNotFoundError):
    """LEAF's preprocessed JSON files are not where fastfl looks for them."""


class LeafFormatError(FastFLError, ValueError):
    """A LEAF JSON file (or an image it names) does not have LEAF's layout; names the file and user."""


class LeafCacheError(FastFLError, ValueError):
    """A cache file is stale, truncated or corrupt (fastfl rebuilds it from the JSON files)."""


class PartitionError(FastFLError, ValueError):
    """A partition scheme got an invalid or impossible combination of arguments."""


class PartitionTypeError(FastFLError, TypeError):
    """A partition argument has the wrong type (e.g. float labels, a non-integer count)."""


class DatasetFileError(FastFLError, FileNotFoundError):
    """A data set's files are missing or malformed (fastfl never downloads; the message says where to get them)."""


class OptionalDependencyError(FastFLError, ImportError):
    """An optional package (torchvision, matplotlib, pandas) is needed but not installed."""


# Command line and configuration.
class ConfigError(FastFLError, ValueError):
    """A run configuration has an unknown key, a wrong type, a missing file or an unknown name."""


class CheckpointError(FastFLError, ValueError):
    """A run's checkpoint is missing, corrupt, or belongs to a different configuration."""

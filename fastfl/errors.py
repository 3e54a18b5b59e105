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


# Packages.
class PackageError(FastFLError, ValueError):
    """A Package was given an invalid value (a bad metadata key, too many entries, ...)."""


class PackageTypeError(FastFLError, TypeError):
    """A Package was given content or metadata of an unsupported type."""


class CodecError(FastFLError, ValueError):
    """A wire codec is malformed, or its code or name clashes with a registered codec."""


# Network set-up and ranks.
class NetworkConfigError(FastFLError, ValueError):
    """A network setting (address, ranks, world size, wire, timeout, limits) is missing or out of range."""


class InvalidRankError(FastFLError, ValueError):
    """A rank passed to a send or receive is outside the world, or is this process's own rank."""


# Dtypes (shared by the wire format and the kernels).
class DtypeError(FastFLError, TypeError):
    """A torch dtype has no fastfl dtype code (complex, float8, wide unsigned integers)."""


class DtypeCodeError(FastFLError, ValueError):
    """A dtype code is not one of fastfl's (0..9)."""


# Data and metrics helpers.
class EmptyDataError(FastFLError, ValueError):
    """Data that must hold samples is empty (a test loader, a partition's targets)."""


class InvalidCountError(FastFLError, ValueError):
    """A count of items or samples is negative."""


# FL roles and the launcher.
class RoleConfigError(FastFLError, ValueError):
    """A manager, handler or trainer got an invalid setting (a ratio, a round count, a strategy, a mode)."""


class RoleTypeError(FastFLError, TypeError):
    """A manager, handler, trainer or coordinator got an argument of the wrong type."""


class LaunchError(FastFLError, ValueError):
    """The launcher got an invalid command list or setting."""


class PeerLostError(CommunicationError):
    """A peer's connection closed (its process exited or crashed); `rank` names that peer."""

    def __init__(self, rank: int, message: str | None = None) -> None:
        self.rank = rank
        super().__init__(
            message or f"the connection to rank {rank} was closed (that process exited or crashed)"
        )

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return type(self), (self.rank, str(self))


class RunMismatchError(CommunicationError):
    """A process tried to join another run: a different run identity or world size, or a rank taken twice."""


class UnknownAlgorithmError(FastFLError, ValueError):
    """An algorithm name that `fastfl.contrib.algorithm` does not know (the message lists the known ones)."""


# Command line and configuration.
class ConfigError(FastFLError, ValueError):
    """A run configuration has an unknown key, a wrong type, a missing file or an unknown name."""


class CheckpointError(FastFLError, ValueError):
    """A run's checkpoint is missing, corrupt, or belongs to a different configuration."""


# Helpers (fastfl.utils.functional).
class InvalidArgumentError(FastFLError, ValueError):
    """A helper got an argument of the right type but an impossible value (mismatched shapes, k beyond the classes)."""


class MissingEntryError(FastFLError, KeyError):
    """A JSON configuration has no entry for the name asked for, or the entry lacks a field."""

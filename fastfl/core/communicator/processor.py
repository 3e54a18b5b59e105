"""PackageProcessor: send and receive Packages over torch.distributed, in fastfl's or FedLab's format.

As in FedLab, `PackageProcessor.send_package(package, dst)` and `PackageProcessor.recv_package(src)`
work as static calls (with the default settings). An instance, `PackageProcessor(wire="fedlab",
timeout=60)`, carries its own settings. The fastfl format sends one 8 KiB frame, plus the body when
it does not fit in the frame; see docs/wire.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from fastfl.core.communicator import reader, transport
from fastfl.core.communicator import wire as wire_module
from fastfl.core.communicator.buffers import BodyBuffers, FrameRing
from fastfl.core.communicator.fedlab_wire import (
    HEADER_DATA_TYPE_IDX,
    HEADER_RECEIVER_RANK_IDX,
    fedlab_parts,
    recv_fedlab,
)
from fastfl.core.communicator.package import Package
from fastfl.core.communicator.reader import Incoming
from fastfl.dtypes import code_of
from fastfl.errors import InvalidRankError, NetworkConfigError, PackageTypeError
from fastfl.utils.message_code import MessageCode

__all__ = ["Incoming", "PackageProcessor", "Received"]

WIRES = ("fastfl", "fedlab")
Received = tuple[int, MessageCode, list[Tensor] | None]


class _DefaultOrBound:
    """Bind a method to the instance, or to the class's default instance when called on the class."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj: PackageProcessor | None, owner: type[PackageProcessor]) -> Callable[..., Any]:
        return self.fn.__get__(obj if obj is not None else owner.default(), owner)


class PackageProcessor:
    """Send and receive packages; a timeout bounds every wait.

    Args:
        wire: "fastfl" (two transfers at most, mixed dtypes, metadata, codecs) or "fedlab"
            (FedLab 1.2.1's format).
        timeout: seconds any single wait may take before `CommunicationTimeout`.
        max_message_bytes: the largest body accepted from a peer; larger announcements are errors.
        max_tensors: the most tensors a received package may hold (checked against the header before
            anything is allocated); with `max_message_bytes` it bounds the memory one receive takes.
        restore_dtypes: give tensors that travelled in a narrower wire dtype back in their own dtype.
        reuse_buffers: receive into the memory of an earlier package once nothing received from it
            is alive (saves the page faults of a fresh allocation; see buffers.py for the rule).
    """

    _default: PackageProcessor | None = None

    def __init__(
        self,
        *,
        wire: str = "fastfl",
        timeout: float = transport.DEFAULT_TIMEOUT,
        max_message_bytes: int = wire_module.DEFAULT_MAX_MESSAGE_BYTES,
        max_tensors: int = wire_module.DEFAULT_MAX_TENSORS,
        restore_dtypes: bool = True,
        reuse_buffers: bool = True,
    ) -> None:
        if wire not in WIRES:
            raise NetworkConfigError(f"wire must be one of {', '.join(WIRES)}, got {wire!r}")
        if not timeout > 0:
            raise NetworkConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if max_message_bytes <= 0:
            raise NetworkConfigError(f"max_message_bytes must be positive, got {max_message_bytes}")
        if isinstance(max_tensors, bool) or not isinstance(max_tensors, int) or max_tensors <= 0:
            raise NetworkConfigError(f"max_tensors must be a positive integer, got {max_tensors!r}")
        self.wire = wire
        self.timeout = float(timeout)
        self.max_message_bytes = int(max_message_bytes)
        self.max_tensors = max_tensors
        self.restore_dtypes = restore_dtypes
        self._bodies = BodyBuffers(reuse_buffers)
        self._frames = FrameRing(wire_module.FRAME_BYTES, slots=2 if reuse_buffers else 0)

    @classmethod
    def default(cls) -> PackageProcessor:
        """The instance that static-style calls use."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    @_DefaultOrBound
    def send_package(self, package: Package, dst: int) -> None:
        """Send a package to rank `dst` (fills the header's receiver and dtype fields, as FedLab does).

        A package may be sent to several ranks: it is packed once, and each further send only
        rewrites the header (the body goes out from the same bytes), so a downlink built once per
        round costs one pack however many clients receive it.
        """
        if not isinstance(package, Package):
            raise PackageTypeError(f"package must be a Package, got {type(package).__name__}")
        group = transport.check_usable()
        _check_rank(dst, "dst", group)
        with transport.send_lock(dst):
            if self.wire == "fedlab":
                transport.send(fedlab_parts(package, dst), dst, self.timeout, "sending a FedLab package")
                return
            package.set_header_field(HEADER_RECEIVER_RANK_IDX, dst)
            if package.dtype is not None:
                package.set_header_field(HEADER_DATA_TYPE_IDX, int(code_of(package.dtype)))
            with package.send_lock:
                parts = package.wire_parts(group.rank, dst)
                if group.device.type != "cpu":
                    parts = [t.to(group.device) for t in parts]
                transport.send(parts, dst, self.timeout, "sending a package")

    @_DefaultOrBound
    def recv_package(self, src: int | None = None) -> Received:
        """Receive one package from rank `src` (None: from any rank).

        Returns:
            (sender_rank, message_code, content): content is the list of tensors, or None when the
            package was empty.
        """
        got = self.receive(src)
        return got.sender, got.message_code, got.content

    def recv_counted(self, src: int | None = None) -> tuple[Received, int]:
        """Like `recv_package`, and also return the tensor bytes as they travelled on the wire."""
        got = self.receive(src)
        return (got.sender, got.message_code, got.content), got.nbytes

    def receive(self, src: int | None = None) -> Incoming:
        """Receive one package from rank `src` (None: from any rank), with its metadata.

        The one receive entry point: `recv_package` and `recv_counted` are views of its result.

        Returns:
            An `Incoming`: sender, message code, content (or None), meta, and wire bytes.
        """
        group = transport.check_usable()
        if src is not None:
            _check_rank(src, "src", group)
        elif group.device.type == "cuda":
            raise InvalidRankError("nccl cannot receive from any rank; pass src=<rank>")
        with transport.recv_lock:
            if self.wire == "fedlab":
                sender, code, content = recv_fedlab(
                    src, self.timeout, self.max_message_bytes, self.max_tensors
                )
                nbytes = sum(t.numel() * t.element_size() for t in content or [])
                return Incoming(sender, code, content, {}, nbytes)
            return reader.receive(src, group, self, self._frames, self._bodies)


def _check_rank(rank: object, name: str, group: transport.Group) -> None:
    world = group.world_size
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < world:
        raise InvalidRankError(f"{name} must be a rank in 0..{world - 1}, got {rank!r}")
    if rank == group.rank:
        raise InvalidRankError(f"{name}={rank} is this process's own rank; packages go to other ranks")

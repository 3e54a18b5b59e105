"""PackageProcessor: send and receive Packages over torch.distributed, in fastfl's or FedLab's format.

As in FedLab, `PackageProcessor.send_package(package, dst)` and `PackageProcessor.recv_package(src)`
work as static calls (with the default settings). An instance, `PackageProcessor(wire="fedlab",
timeout=60)`, carries its own settings. The fastfl format sends one 8 KiB frame, plus the body when
it does not fit in the frame; see docs/wire.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from torch import Tensor

from fastfl.core.communicator import reader, transport, wire
from fastfl.core.communicator.buffers import BodyBuffers, FrameRing, empty_bytes
from fastfl.core.communicator.fedlab_wire import fedlab_parts, recv_fedlab
from fastfl.core.communicator.meta import Meta, decode_meta
from fastfl.core.communicator.package import (
    HEADER_DATA_TYPE_IDX,
    HEADER_RECEIVER_RANK_IDX,
    Package,
    to_message_code,
)
from fastfl.dtypes import code_of
from fastfl.errors import KernelArgumentError, KernelTypeError, WireFormatError
from fastfl.utils.message_code import MessageCode

WIRES = ("fastfl", "fedlab")
_FRAME_BYTES = wire.FRAME_BYTES
Received = tuple[int, MessageCode, list[Tensor] | None]


class Incoming(NamedTuple):
    """One received package: FedLab's triple, the package's metadata, and its bytes on the wire.

    Attributes:
        sender: the rank it came from.
        message_code: its `MessageCode`.
        content: its tensors, or None when it held none.
        meta: `Package.meta` as the sender set it (always empty in FedLab's wire format).
        nbytes: the tensor bytes as they travelled (numel times wire item size, summed).
    """

    sender: int
    message_code: MessageCode
    content: list[Tensor] | None
    meta: Meta
    nbytes: int


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
        wire: "fastfl" (two transfers at most, mixed dtypes) or "fedlab" (FedLab 1.2.1's format).
        timeout: seconds any single wait may take before `CommunicationTimeout`.
        max_message_bytes: the largest body accepted from a peer; larger announcements are errors.
        max_tensors: the most tensors a received package may hold (checked against the header before
            anything is allocated); with `max_message_bytes` it bounds the memory one receive takes.
        restore_dtypes: give tensors that travelled in a narrower wire dtype back in their own dtype.
        reuse_buffers: receive large bodies into the previous body's buffer once the caller has
            dropped every tensor of that package (saves the page faults of a fresh allocation).
    """

    _default: PackageProcessor | None = None

    def __init__(
        self,
        *,
        wire: str = "fastfl",
        timeout: float = transport.DEFAULT_TIMEOUT,
        max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES,
        max_tensors: int = wire.DEFAULT_MAX_TENSORS,
        restore_dtypes: bool = True,
        reuse_buffers: bool = True,
    ) -> None:
        if wire not in WIRES:
            raise KernelArgumentError(f"wire must be one of {', '.join(WIRES)}, got {wire!r}")
        if not timeout > 0:
            raise KernelArgumentError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if max_message_bytes <= 0:
            raise KernelArgumentError(f"max_message_bytes must be positive, got {max_message_bytes}")
        self.wire = wire
        self.timeout = float(timeout)
        if isinstance(max_tensors, bool) or not isinstance(max_tensors, int) or max_tensors <= 0:
            raise KernelArgumentError(f"max_tensors must be a positive integer, got {max_tensors!r}")
        self.max_message_bytes = int(max_message_bytes)
        self.max_tensors = max_tensors
        self.restore_dtypes = restore_dtypes
        self._buffers = BodyBuffers(reuse_buffers)
        self._frames = FrameRing(_FRAME_BYTES, slots=2 if reuse_buffers else 0)

    @classmethod
    def default(cls) -> PackageProcessor:
        """The instance that static-style calls use."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    @_DefaultOrBound
    def send_package(self, package: Package, dst: int) -> None:
        """Send a package to rank `dst` (fills the header's receiver and dtype fields, as FedLab does)."""
        if not isinstance(package, Package):
            raise KernelTypeError(f"package must be a Package, got {type(package).__name__}")
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

        Returns:
            An `Incoming`: sender, message code, content (or None), meta, and wire bytes.
        """
        group = transport.check_usable()
        if src is not None:
            _check_rank(src, "src", group)
        elif group.device.type == "cuda":
            raise KernelArgumentError("nccl cannot receive from any rank; pass src=<rank>")
        with transport.recv_lock:
            if self.wire == "fedlab":
                sender, code, content = recv_fedlab(
                    src, self.timeout, self.max_message_bytes, self.max_tensors
                )
                nbytes = sum(t.numel() * t.element_size() for t in content or [])
                return Incoming(sender, code, content, {}, nbytes)
            return self._recv_fastfl(src, group)

    def _recv_fastfl(self, src: int | None, group: transport.Group) -> Incoming:
        cpu = group.device.type == "cpu"
        if cpu:
            host, frame = self._frames.take()
            source = transport.recv(frame, src, self.timeout, "receiving a package header")
        else:
            frame = empty_bytes(wire.FRAME_BYTES, group.device)
            source = transport.recv(frame, src, self.timeout, "receiving a package header")
            host = frame[: wire.HEADER_BYTES].cpu().numpy()
        head = wire.decode_header_bytes(
            host[: wire.HEADER_BYTES].tobytes(), self.max_message_bytes, self.max_tensors
        )
        if head.sender != source or head.receiver != group.rank:
            raise WireFormatError(
                f"package header says rank {head.sender} -> {head.receiver}, but it came from rank {source} "
                f"to rank {group.rank}"
            )
        if head.inline and cpu:
            tensors, nbytes = reader.unpack_inline(host, head, restore_dtypes=self.restore_dtypes)
            meta = _meta_of(host, wire.HEADER_BYTES, head)
            return Incoming(source, to_message_code(head.message_code, source), tensors or None, meta, nbytes)
        if head.inline:
            body, base = frame, wire.HEADER_BYTES
        else:
            body, base = self._buffers.take(head.body_bytes, group.device), 0
            transport.recv(body, source, self.timeout, "receiving a package body")
        tensors, nbytes = reader.unpack_trusted(body, head, restore_dtypes=self.restore_dtypes, base=base)
        meta = _meta_of(body if cpu else body.cpu(), base, head) if head.meta_bytes else {}
        return Incoming(source, to_message_code(head.message_code, source), tensors or None, meta, nbytes)


def _check_rank(rank: object, name: str, group: transport.Group) -> None:
    world = group.world_size
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < world:
        raise KernelArgumentError(f"{name} must be a rank in 0..{world - 1}, got {rank!r}")
    if rank == group.rank:
        raise KernelArgumentError(f"{name}={rank} is this process's own rank; packages go to other ranks")


def _meta_of(buf: Any, base: int, head: wire.Header) -> Meta:
    """The metadata section of a received body that starts at byte `base` of `buf` (CPU bytes)."""
    if not head.meta_bytes:
        return {}
    start = base + wire.align(head.payload_bytes, 8) + head.table_bytes
    host = buf.numpy() if isinstance(buf, Tensor) else buf
    return decode_meta(host, start, head.meta_bytes)

"""Package: FedLab 1.2.1's message object, packed in one pass into a buffer ready for the wire.

A Package copies the tensors appended to it (as FedLab's does), but into one growing byte buffer
laid out as fastfl's wire payload, so sending it costs no further copy and appending K tensors
costs one pass over their bytes instead of FedLab's K concatenations. Tensors of different dtypes
and shapes keep them. FedLab's public face is kept: `header`, `slices`, `content`, `dtype`,
`append_tensor`, `append_tensor_list`, `to`, and the static `parse_header` / `parse_content`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from fastfl import ops
from fastfl.core.communicator import reader, wire
from fastfl.core.communicator._helpers import (
    DEFAULT_MESSAGE_CODE_VALUE,
    HEAD_ROOM,
    as_bytes,
    checked,
    copy_small,
    message_code_value,
    to_message_code,
    write_header,
    zero_frame,
)
from fastfl.core.communicator.buffers import PACKAGE_BUFFERS, empty_bytes
from fastfl.core.communicator.meta import MAX_META_BYTES, Meta, check_meta, encode_meta
from fastfl.dtypes import FLOAT_DTYPES, HALF_DTYPES, code_of
from fastfl.errors import KernelArgumentError, KernelTypeError, WireFormatError
from fastfl.utils.message_code import MessageCode

__all__ = [
    "DEFAULT_MESSAGE_CODE_VALUE",
    "DEFAULT_RECEIVER_RANK",
    "DEFAULT_SLICE_SIZE",
    "HEADER_DATA_TYPE_IDX",
    "HEADER_MESSAGE_CODE_IDX",
    "HEADER_RECEIVER_RANK_IDX",
    "HEADER_SENDER_RANK_IDX",
    "HEADER_SIZE",
    "HEADER_SLICE_SIZE_IDX",
    "Package",
    "to_message_code",
]

HEADER_SENDER_RANK_IDX = 0
HEADER_RECEIVER_RANK_IDX = 1
HEADER_SLICE_SIZE_IDX = 2
HEADER_MESSAGE_CODE_IDX = 3
HEADER_DATA_TYPE_IDX = 4
DEFAULT_RECEIVER_RANK = -1
DEFAULT_SLICE_SIZE = 0
HEADER_SIZE = 5


class Package:
    """A message: a code and a list of tensors, packed for the wire as they are appended.

    Args:
        message_code: a `MessageCode`, an int, or None (0).
        content: a tensor, a list or tuple of tensors, or None.
        wire_dtype: torch.float16 or torch.bfloat16 to send floating tensors in that dtype (the
            receiver gets them back in their own dtype); None sends every tensor as it is.
        meta: a few named numbers (`dict[str, int | float]`, short ASCII keys) that travel with the
            package in fastfl's wire format and reach the receiver beside the content; FedLab-style
            code never sees them, and FedLab's three-message format drops them. Kept in `meta`.
    """

    def __init__(
        self,
        message_code: MessageCode | int | None = None,
        content: Tensor | Sequence[Tensor] | None = None,
        *,
        wire_dtype: torch.dtype | None = None,
        meta: Mapping[str, int | float] | None = None,
    ) -> None:
        code = message_code_value(message_code)
        if wire_dtype is not None and wire_dtype not in HALF_DTYPES:
            raise KernelTypeError(
                f"wire_dtype must be None, torch.float16 or torch.bfloat16, got {wire_dtype}"
            )
        sender = dist.get_rank() if dist.is_available() and dist.is_initialized() else -1
        self._fields = [sender, DEFAULT_RECEIVER_RANK, DEFAULT_SLICE_SIZE, code, -1]
        self._header: Tensor | None = None
        self.slices: list[int] = []
        self.dtype: torch.dtype | None = None
        self.wire_dtype = wire_dtype
        self.meta: Meta = check_meta(meta)
        self.send_lock = threading.Lock()
        self._clear()
        if content is None:
            return
        if isinstance(content, Tensor):
            self.append_tensor(content)
        elif isinstance(content, list | tuple):
            self.append_tensor_list(content)
        else:
            raise KernelTypeError(
                f"content must be a tensor, a list or tuple of tensors, or None; got {type(content).__name__}"
            )

    def _clear(self) -> None:
        self._buf: Tensor | None = None  # [header room][payload][pad][table]
        self._shapes: list[tuple[int, ...]] = []
        self._wire: list[torch.dtype] = []
        self._orig: list[torch.dtype] = []
        self._offsets: list[int] = []
        self._end = 0
        self._dims = 0
        self._table: bytes | None = None
        self._meta_at: tuple[int, bytes] | None = None  # where the metadata section was written, and what
        self._tail_end = 0  # where the last body written into the buffer ended
        self._framed: tuple[object, ...] | None = None  # what the header in an inline frame says

    def __del__(self) -> None:
        buf = getattr(self, "_buf", None)
        pool = PACKAGE_BUFFERS  # None only while the interpreter shuts down
        if buf is not None and pool is not None and buf.numel() > wire.FRAME_BYTES:
            pool.give(buf)

    @property
    def header(self) -> Tensor:
        """FedLab's int32[5] header: sender, receiver, slice size, message code, dtype code.

        Built on first access; from then on it is the package's header, so writes to it stick.
        """
        if self._header is None:
            self._header = torch.tensor(self._fields, dtype=torch.int32)
        return self._header

    @header.setter
    def header(self, value: Tensor) -> None:
        self._header = value

    def set_header_field(self, index: int, value: int) -> None:
        """Write one header field without building the header tensor when nobody asked for it."""
        self._fields[index] = value
        if self._header is not None:
            self._header[index] = value

    @property
    def message_code(self) -> int:
        """The message code as an int."""
        if self._header is not None:
            return int(self._header[HEADER_MESSAGE_CODE_IDX])
        return self._fields[HEADER_MESSAGE_CODE_IDX]

    @property
    def count(self) -> int:
        """The number of tensors in the package."""
        return len(self._shapes)

    @property
    def payload_bytes(self) -> int:
        """Bytes of the wire payload (tensor bytes plus alignment padding)."""
        return self._end

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data as sent on the wire (numel times wire item size, summed)."""
        return sum(math.prod(s) * wire.ITEMSIZE[dt] for s, dt in zip(self._shapes, self._wire, strict=True))

    def append_tensor(self, tensor: Tensor) -> None:
        """Copy one tensor into the package."""
        if not isinstance(tensor, Tensor):
            raise KernelTypeError(
                f"Invalid content type, expecting torch.Tensor but get {type(tensor).__name__}"
            )
        self.append_tensor_list([tensor])

    def append_tensor_list(self, tensor_list: Sequence[Tensor]) -> None:
        """Copy tensors into the package in one pass over their bytes."""
        if not isinstance(tensor_list, list | tuple):
            raise KernelTypeError(
                f"tensor_list must be a list or tuple of tensors, got {type(tensor_list).__name__}"
            )
        srcs = [checked(t, i) for i, t in enumerate(tensor_list)]
        if not srcs:
            return
        wire_dtypes = [self._wire_of(t.dtype) for t in srcs]
        offsets, end = wire.layout(wire_dtypes, [t.numel() for t in srcs], self._end)
        shapes = [tuple(t.shape) for t in srcs]
        self._reserve(end, len(shapes), sum(len(s) for s in shapes), srcs[0].device)
        self._zero_gaps(offsets, srcs, wire_dtypes)
        if self._buf.numel() == wire.FRAME_BYTES:
            copy_small(self._buf, srcs, offsets, wire_dtypes)
        else:
            ops.pack(srcs, [HEAD_ROOM + o for o in offsets], wire_dtypes, out=self._buf)
        self._shapes += shapes
        self._wire += wire_dtypes
        self._orig += [t.dtype for t in srcs]
        self._offsets += offsets
        self._end = end
        self._dims += sum(len(s) for s in shapes)
        self._table = self._meta_at = self._framed = None
        for t in srcs:
            self.slices += [t.numel(), t.dim(), *t.shape]
        self.set_header_field(HEADER_SLICE_SIZE_IDX, len(self.slices))
        if self.dtype is None:
            self.dtype = wire_dtypes[0]

    def _wire_of(self, dtype: torch.dtype) -> torch.dtype:
        return self.wire_dtype if self.wire_dtype is not None and dtype in FLOAT_DTYPES else dtype

    def _reserve(self, end: int, count: int, dims: int, device: torch.device) -> None:
        """Make the buffer hold `end` payload bytes plus the table and metadata, keeping the payload."""
        if self._buf is not None and self._buf.device != device:
            raise KernelArgumentError(
                f"tensors are on {device} but the package holds tensors on {self._buf.device}"
            )
        table = wire.table_bytes(len(self._shapes) + count, self._dims + dims)
        meta_room = min(wire.align(2 + 42 * len(self.meta), 8), MAX_META_BYTES) if self.meta else 0
        self._grow(HEAD_ROOM + wire.align(end, 8) + table + meta_room, device)

    def _grow(self, need: int, device: torch.device) -> None:
        """Make the buffer at least `need` bytes long, keeping the payload packed so far."""
        have = 0 if self._buf is None else self._buf.numel()
        if need <= have:
            return
        if self._buf is None and need <= wire.FRAME_BYTES:
            self._buf = zero_frame(device)
            return
        size = max(need, have + have // 2) + wire.table_bytes(8, 32)
        buf = PACKAGE_BUFFERS.take(size) if device.type == "cpu" else None
        if buf is None:
            buf = empty_bytes(size, device)
        if self._buf is not None and self._end:
            buf[HEAD_ROOM : HEAD_ROOM + self._end].copy_(self._buf[HEAD_ROOM : HEAD_ROOM + self._end])
        self._buf = buf
        self._table = self._meta_at = self._framed = None
        self._tail_end = HEAD_ROOM + self._end

    def _zero_gaps(self, offsets: list[int], srcs: list[Tensor], dtypes: list[torch.dtype]) -> None:
        """Zero the alignment gaps before each new tensor (they may hold an earlier table)."""
        prev = self._end
        for off, t, dt in zip(offsets, srcs, dtypes, strict=True):
            if off > prev:
                self._buf[HEAD_ROOM + prev : HEAD_ROOM + off].zero_()
            prev = off + t.numel() * wire.ITEMSIZE[dt]

    @property
    def tensors(self) -> list[Tensor]:
        """The packed tensors, as views of the package buffer in their wire dtypes."""
        if not self._shapes:
            return []
        return reader.unpack(self.body(), self.wire_header(-1, -1), restore_dtypes=False)

    @property
    def content(self) -> Tensor | None:
        """FedLab's 1-D content: all tensors back to back in `dtype` (a view; one dtype only)."""
        if not self._shapes:
            return None
        if any(dt != self.dtype for dt in self._wire):
            kinds = ", ".join(sorted({str(dt) for dt in self._wire}))
            raise KernelTypeError(
                f"this package holds tensors of dtypes {kinds}; content is defined for one dtype only. "
                "Use package.tensors, or package.to(dtype) first"
            )
        return self._buf[HEAD_ROOM : HEAD_ROOM + self._end].view(self.dtype)

    def to(self, dtype: torch.dtype) -> Package:
        """Convert every tensor in the package to `dtype` and return the package.

        FedLab 1.2.1 changed only the `dtype` attribute (B1). On an empty package this does nothing.

        Raises:
            TypeError: `dtype` is not one of the supported dtypes.
        """
        code_of(dtype)
        if any(w != dtype or o != dtype for w, o in zip(self._wire, self._orig, strict=True)):
            old, slices, wire_dtype = self.tensors, self.slices, self.wire_dtype
            self._clear()
            self.slices, self.wire_dtype = [], None
            self.append_tensor_list([t if t.dtype == dtype else ops.cast(t, dtype) for t in old])
            self.slices, self.wire_dtype = slices, wire_dtype
        if self._shapes:
            self.dtype = dtype
        return self

    def wire_header(self, sender: int, receiver: int, meta_bytes: int | None = None) -> wire.Header:
        """The fastfl header for sending this package from `sender` to `receiver`.

        `meta_bytes` is the size of the encoded metadata section when the caller has it.
        """
        if meta_bytes is None:
            meta_bytes = len(self._meta_section())
        table = wire.table_bytes(len(self._shapes), self._dims)
        body = wire.align(self._end, 8) + table + meta_bytes
        inline = body <= wire.INLINE_CAPACITY
        return wire.Header(
            self.message_code,
            sender,
            receiver,
            len(self._shapes),
            self._end,
            table,
            body,
            self._dims,
            inline,
            meta_bytes,
        )

    def _meta_section(self) -> bytes:
        """The metadata section for the current `meta` (checked again: the dict may have changed)."""
        return encode_meta(check_meta(self.meta)) if self.meta else b""

    def body(self) -> Tensor:
        """The wire body (payload, padding, table, metadata) as a view of the package buffer."""
        section = self._meta_section()
        if self._buf is None and not section:
            return torch.empty(0, dtype=torch.uint8)
        stop = self._write_tail(section)
        return self._buf[HEAD_ROOM:stop]

    def _write_tail(self, section: bytes) -> int:
        """Write the tensor table and the metadata section after the payload; return where the body ends.

        The table is written once per content and the section once per distinct metadata; bytes
        left over from a longer earlier body are zeroed, so an inline frame stays canonical.
        """
        start = HEAD_ROOM + wire.align(self._end, 8)
        meta_at = start + wire.table_bytes(len(self._shapes), self._dims)
        stop = meta_at + len(section)
        if self._buf is None or self._buf.numel() < stop:
            self._grow(stop, self._buf.device if self._buf is not None else torch.device("cpu"))
        if self._table is None:
            self._table = wire.encode_table(
                [int(code_of(d)) for d in self._wire],
                [int(code_of(d)) for d in self._orig],
                self._shapes,
                self._offsets,
            )
            self._buf[HEAD_ROOM + self._end : start].zero_()
            if self._table:
                self._buf[start : start + len(self._table)].copy_(as_bytes(self._table))
        if self._meta_at != (meta_at, section):
            if section:
                self._buf[meta_at:stop].copy_(as_bytes(section))
            self._meta_at = (meta_at, section)
        if self._tail_end > stop:
            self._buf[stop : self._tail_end].zero_()
        self._tail_end = stop
        return stop

    def wire_parts(self, sender: int, receiver: int) -> list[Tensor]:
        """The one or two buffers that carry this package (hold `send_lock` until they are sent).

        A body that fits in the 8 KiB frame is sent in place from the package buffer, header room
        included, so a small package costs one transfer and no copy. The same package sent again
        (to the same or another rank) reuses its packed bytes: only the header is rewritten.
        """
        section = self._meta_section()
        key = (sender, receiver, self.message_code, len(self._shapes), self._end, self._dims, section)
        if key == self._framed and self._table is not None:
            return [self._buf]  # resent unchanged: the frame already holds this header and table
        head = self.wire_header(sender, receiver, len(section))
        raw = wire.encode_header(head)
        if head.inline:
            stop = self._write_tail(section)
            if self._buf.numel() != wire.FRAME_BYTES:  # a large buffer whose metadata shrank since
                frame = zero_frame(self._buf.device)
                frame[HEAD_ROOM:stop].copy_(self._buf[HEAD_ROOM:stop])
                write_header(frame, raw)
                return [frame]
            write_header(self._buf, raw)
            self._framed = key
            return [self._buf]
        stop = self._write_tail(section)
        body = self._buf[HEAD_ROOM:stop]
        frame = zero_frame(body.device)
        write_header(frame, raw)
        return [frame, body]

    @staticmethod
    def parse_content(slices: Sequence[int], content: Tensor | None) -> list[Tensor]:
        """Cut FedLab's 1-D content into tensors of the shapes in `slices` (views, not copies).

        Raises:
            WireFormatError: the slices are malformed or do not match the content's length.
        """
        from fastfl.core.communicator.fedlab_wire import parse_slices

        records = parse_slices(list(slices))
        if not records and content is None:
            return []  # an empty Package's slices and content, as FedLab returns
        total = sum(n for n, _ in records)
        if not isinstance(content, Tensor) or content.dim() != 1 or content.numel() != total:
            raise WireFormatError(f"slices describe {total} elements but content is {_describe(content)}")
        return [
            t.view(shape)
            for t, (_, shape) in zip(content.split([n for n, _ in records]), records, strict=True)
        ]

    @staticmethod
    def parse_header(header: Tensor) -> tuple[int, int, int, MessageCode, int]:
        """Return (sender_rank, receiver_rank, slice_size, message_code, data_type) of a FedLab header.

        Raises:
            WireFormatError: the header is not 5 integers or carries an unknown message code.
        """
        if not isinstance(header, Tensor) or header.numel() != HEADER_SIZE or header.is_floating_point():
            raise WireFormatError(f"a FedLab header is {HEADER_SIZE} integers, got {header!r}")
        sender, receiver, slice_size, code, data_type = (int(v) for v in header.tolist())
        return sender, receiver, slice_size, to_message_code(code, sender), data_type

    def __repr__(self) -> str:
        shapes = ", ".join(f"{dt}{list(s)}" for dt, s in zip(self._wire, self._shapes, strict=True))
        return f"Package(message_code={self.message_code}, tensors=[{shapes}])"


def _describe(content: object) -> str:
    if isinstance(content, Tensor):
        return f"a tensor of shape {tuple(content.shape)}"
    return type(content).__name__

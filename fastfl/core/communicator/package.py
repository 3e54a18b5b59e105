"""Package: FedLab 1.2.1's message object, packed in one pass into a buffer ready for the wire.

A Package copies the tensors appended to it (as FedLab's does), but into one growing byte buffer
laid out as fastfl's wire payload, so sending it costs no further copy and appending K tensors
costs one pass over their bytes instead of FedLab's K concatenations. Tensors of different dtypes
and shapes keep them. FedLab's public face is kept: `header`, `slices`, `content`, `dtype`,
`append_tensor`, `append_tensor_list`, `to`, and the static `parse_header` / `parse_content`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from fastfl import ops
from fastfl.core.communicator import fedlab_wire, reader, wire
from fastfl.core.communicator._helpers import (
    DEFAULT_MESSAGE_CODE_VALUE,
    HEAD_ROOM,
    checked,
    copy_small,
    message_code_value,
    to_message_code,
    write_header,
    zero_frame,
)
from fastfl.core.communicator.codecs import EncodedTensor
from fastfl.core.communicator.fedlab_wire import (
    DEFAULT_RECEIVER_RANK,
    DEFAULT_SLICE_SIZE,
    HEADER_DATA_TYPE_IDX,
    HEADER_MESSAGE_CODE_IDX,
    HEADER_RECEIVER_RANK_IDX,
    HEADER_SENDER_RANK_IDX,
    HEADER_SIZE,
    HEADER_SLICE_SIZE_IDX,
)
from fastfl.core.communicator.meta import MAX_META_BYTES, Meta, check_meta, encode_meta
from fastfl.core.communicator.packbuf import PackBuffer
from fastfl.dtypes import FLOAT_DTYPES, HALF_DTYPES, code_of
from fastfl.errors import DtypeError, PackageError, PackageTypeError
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
_BYTE = torch.uint8


class Package:
    """A message: a code and a list of tensors, packed for the wire as they are appended.

    Args:
        message_code: a `MessageCode`, an int, or None (0).
        content: a tensor, a list or tuple of tensors, or None. An `EncodedTensor` (codecs.py) may
            stand for a tensor: its blob travels as it is, and the receiver decodes it.
        wire_dtype: torch.float16 or torch.bfloat16 to send floating tensors in that dtype (the
            receiver gets them back in their own dtype); None sends every tensor as it is.
        meta: a few named numbers (`dict[str, int | float]`, short ASCII keys) that travel with the
            package in fastfl's wire format and reach the receiver beside the content; FedLab-style
            code never sees them, and FedLab's three-message format drops them. Kept in `meta`.
    """

    def __init__(
        self,
        message_code: MessageCode | int | None = None,
        content: Tensor | EncodedTensor | Sequence[Tensor | EncodedTensor] | None = None,
        *,
        wire_dtype: torch.dtype | None = None,
        meta: Mapping[str, int | float] | None = None,
    ) -> None:
        code = message_code_value(message_code)
        if wire_dtype is not None and wire_dtype not in HALF_DTYPES:
            raise PackageTypeError(
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
        if isinstance(content, Tensor | EncodedTensor):
            self.append_tensor(content)
        elif isinstance(content, list | tuple):
            self.append_tensor_list(content)
        else:
            raise PackageTypeError(
                f"content must be a tensor, a list or tuple of tensors, or None; got {type(content).__name__}"
            )

    def _clear(self) -> None:
        self._pack = PackBuffer()
        self._shapes: list[tuple[int, ...]] = []
        self._wire: list[torch.dtype] = []
        self._orig: list[torch.dtype] = []
        self._offsets: list[int] = []
        self._sizes: list[int] = []  # bytes on the wire
        self._codecs: list[int] = []  # 0 = raw
        self._end = 0
        self._dims = 0
        self._framed: tuple[object, ...] | None = None  # what the header in an inline frame says

    def __del__(self) -> None:
        pack = getattr(self, "_pack", None)
        if pack is not None:
            pack.release()

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
        """Bytes of tensor data as sent on the wire (numel times wire item size, blob sizes, summed)."""
        return sum(self._sizes)

    @property
    def has_codecs(self) -> bool:
        """True when the package holds codec-encoded tensors (`EncodedTensor`)."""
        return any(self._codecs)

    def append_tensor(self, tensor: Tensor | EncodedTensor) -> None:
        """Copy one tensor (or an encoded tensor's blob) into the package."""
        if not isinstance(tensor, Tensor | EncodedTensor):
            raise PackageTypeError(
                f"Invalid content type, expecting torch.Tensor but get {type(tensor).__name__}"
            )
        self.append_tensor_list([tensor])

    def append_tensor_list(self, tensor_list: Sequence[Tensor | EncodedTensor]) -> None:
        """Copy tensors (and encoded tensors' blobs) into the package in one pass over their bytes."""
        if not isinstance(tensor_list, list | tuple):
            raise PackageTypeError(
                f"tensor_list must be a list or tuple of tensors, got {type(tensor_list).__name__}"
            )
        srcs, shapes, origs, wire_dtypes, sizes, aligns, codecs = [], [], [], [], [], [], []
        itemsize, narrow = wire.ITEMSIZE, self.wire_dtype
        for i, item in enumerate(tensor_list):
            item = checked(item, i)
            if type(item) is EncodedTensor:
                src, dt, align, codec = item.blob, _BYTE, wire.BLOB_ALIGN, item.codec
            else:
                src, dt, codec = item, item.dtype, 0
                if narrow is not None and dt in FLOAT_DTYPES:
                    dt = narrow
                align = itemsize[dt]
            srcs.append(src)
            shapes.append(tuple(item.shape))
            origs.append(item.dtype)
            wire_dtypes.append(dt)
            sizes.append(src.numel() * itemsize[dt])
            aligns.append(align)
            codecs.append(codec)
        if not srcs:
            return
        offsets, end = wire.layout(aligns, sizes, self._end)
        dims = sum(len(s) for s in shapes)
        table = wire.table_bytes(
            len(self._shapes) + len(shapes), self._dims + dims, any(codecs) or any(self._codecs)
        )
        meta_room = min(wire.align(2 + 42 * len(self.meta), 8), MAX_META_BYTES) if self.meta else 0
        pack = self._pack
        pack.reserve(HEAD_ROOM + wire.align(end, 8) + table + meta_room, self._end, srcs[0].device)
        pack.zero_gaps(self._end, offsets, sizes)
        if pack.buf.numel() == wire.FRAME_BYTES:
            copy_small(pack.buf, srcs, offsets, wire_dtypes)
        else:
            ops.pack(srcs, [HEAD_ROOM + o for o in offsets], wire_dtypes, out=pack.buf)
        self._shapes += shapes
        self._wire += wire_dtypes
        self._orig += origs
        self._offsets += offsets
        self._sizes += sizes
        self._codecs += codecs
        self._end = end
        self._dims += dims
        pack.stale()
        self._framed = None
        slices = self.slices
        for t in srcs:
            slices += [t.numel(), t.dim(), *t.shape]
        self.set_header_field(HEADER_SLICE_SIZE_IDX, len(slices))
        if self.dtype is None:
            self.dtype = wire_dtypes[0]

    @property
    def tensors(self) -> list[Tensor]:
        """The packed tensors, as views of the package buffer in their wire dtypes (encoded ones decoded)."""
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
            raise PackageTypeError(
                f"this package holds tensors of dtypes {kinds}; content is defined for one dtype only. "
                "Use package.tensors, or package.to(dtype) first"
            )
        return self._pack.buf[HEAD_ROOM : HEAD_ROOM + self._end].view(self.dtype)

    def to(self, dtype: torch.dtype) -> Package:
        """Convert every tensor in the package to `dtype` and return the package.

        FedLab 1.2.1 changed only the `dtype` attribute (B1). On an empty package this does nothing.

        Raises:
            DtypeError: (a TypeError) `dtype` is not one of the supported dtypes.
            PackageError: the package holds encoded tensors (decode them first).
        """
        try:
            code_of(dtype)
        except TypeError as err:
            raise DtypeError(str(err)) from None
        if self.has_codecs:
            raise PackageError(
                "package.to() cannot convert codec-encoded tensors; build the package from decoded ones"
            )
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
        codecs = self.has_codecs
        table = wire.table_bytes(len(self._shapes), self._dims, codecs)
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
            codecs,
        )

    def _meta_section(self) -> bytes:
        """The metadata section for the current `meta` (checked again: the dict may have changed)."""
        return encode_meta(check_meta(self.meta)) if self.meta else b""

    def body(self) -> Tensor:
        """The wire body (payload, padding, table, metadata) as a view of the package buffer."""
        section = self._meta_section()
        if self._pack.buf is None and not section:
            return torch.empty(0, dtype=torch.uint8)
        stop = self._write_tail(section)
        return self._pack.buf[HEAD_ROOM:stop]

    def _write_tail(self, section: bytes) -> int:
        """Write the table (once per content) and the metadata section; return where the body ends."""
        codecs = self.has_codecs

        def table() -> bytes:
            return wire.encode_table(
                [int(code_of(d)) for d in self._wire],
                [int(code_of(d)) for d in self._orig],
                self._shapes,
                self._offsets,
                self._codecs if codecs else None,
                self._sizes if codecs else None,
            )

        table_bytes = wire.table_bytes(len(self._shapes), self._dims, codecs)
        return self._pack.write_tail(self._end, table_bytes, table, section)

    def wire_parts(self, sender: int, receiver: int) -> list[Tensor]:
        """The one or two buffers that carry this package (hold `send_lock` until they are sent).

        A body that fits in the 8 KiB frame is sent in place from the package buffer, header room
        included, so a small package costs one transfer and no copy. The same package sent again
        (to the same or another rank) reuses its packed bytes: only the header is rewritten.
        """
        section = self._meta_section()
        key = (sender, receiver, self.message_code, len(self._shapes), self._end, self._dims, section)
        pack = self._pack
        if key == self._framed and pack.table_written:
            return [pack.buf]  # resent unchanged: the frame already holds this header and table
        head = self.wire_header(sender, receiver, len(section))
        raw = wire.encode_header(head)
        stop = self._write_tail(section)
        if head.inline and pack.buf.numel() == wire.FRAME_BYTES:
            write_header(pack.buf, raw)
            self._framed = key
            return [pack.buf]
        frame = zero_frame(pack.buf.device)
        write_header(frame, raw)
        if head.inline:  # a large buffer whose metadata shrank since: copy the body into a frame
            frame[HEAD_ROOM:stop].copy_(pack.buf[HEAD_ROOM:stop])
            return [frame]
        return [frame, pack.buf[HEAD_ROOM:stop]]

    @staticmethod
    def parse_content(slices: Sequence[int], content: Tensor | None) -> list[Tensor]:
        """Cut FedLab's 1-D content into tensors of the shapes in `slices` (views, not copies).

        An empty package's `slices` and `content` (`[]` and None) give `[]`, as in FedLab.

        Raises:
            WireFormatError: the slices are malformed or do not match the content's length.
        """
        return fedlab_wire.parse_content(slices, content)

    @staticmethod
    def parse_header(header: Tensor) -> tuple[int, int, int, MessageCode, int]:
        """Return (sender_rank, receiver_rank, slice_size, message_code, data_type) of a FedLab header.

        Raises:
            WireFormatError: the header is not 5 integers or carries an unknown message code.
        """
        return fedlab_wire.parse_header(header)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{dt}{list(s)}" for dt, s in zip(self._wire, self._shapes, strict=True))
        return f"Package(message_code={self.message_code}, tensors=[{shapes}])"

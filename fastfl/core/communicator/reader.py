"""Receive packages in fastfl's wire format: the whole receive path, top to bottom.

`receive` is the one entry point of the network: frame, header, body, table, tensors, metadata,
message code, each step checked before the next allocates. `unpack` cuts the tensors out of a body
already in memory (a Package's own buffer, a test's bytes). The format itself is wire.py's; the
reuse of receive memory is buffers.py's (`HostBlock`).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from fastfl import ops
from fastfl.core.communicator import transport, wire
from fastfl.core.communicator._helpers import to_message_code
from fastfl.core.communicator.buffers import BodyBuffers, FrameRing, HostBlock, empty_bytes
from fastfl.core.communicator.codecs import decode_blob
from fastfl.core.communicator.meta import Meta, decode_meta
from fastfl.errors import WireFormatError
from fastfl.utils.message_code import MessageCode

__all__ = ["Incoming", "Settings", "receive", "unpack"]


class Incoming(NamedTuple):
    """One received package: FedLab's triple, the package's metadata, and its bytes on the wire.

    Attributes:
        sender: the rank it came from.
        message_code: its `MessageCode`.
        content: its tensors, or None when it held none.
        meta: `Package.meta` as the sender set it (always empty in FedLab's wire format).
        nbytes: the tensor bytes as they travelled (numel times wire item size, blob sizes, summed).
    """

    sender: int
    message_code: MessageCode
    content: list[Tensor] | None
    meta: Meta
    nbytes: int


class Settings(Protocol):
    """What a receive may wait for and accept: a `PackageProcessor`'s attributes of these names."""

    timeout: float
    max_message_bytes: int
    max_tensors: int
    restore_dtypes: bool


def receive(
    src: int | None, group: transport.Group, settings: Settings, frames: FrameRing, bodies: BodyBuffers
) -> Incoming:
    """Receive one package from rank `src` (None: any rank). The caller holds `transport.recv_lock`.

    Raises:
        WireFormatError: the package is malformed or over a limit (docs/wire.md lists the checks).
        CommunicationError: the transfer failed or timed out.
    """
    cpu = group.device.type == "cpu"
    # 1. The frame: 8 KiB from `src` or any rank; it starts with the header.
    if cpu:
        block: HostBlock | None = frames.take()
        source = transport.recv(block.whole, src, settings.timeout, "receiving a package header")
        host = block.mem
    else:
        block, body = None, empty_bytes(wire.FRAME_BYTES, group.device)
        source = transport.recv(body, src, settings.timeout, "receiving a package header")
        host = body[: wire.HEADER_BYTES].cpu().numpy()
    # 2. The header, checked in full (once per distinct header bytes) before anything is allocated.
    raw = host[: wire.HEADER_BYTES].tobytes()
    head = wire.decode_header_bytes(raw, settings.max_message_bytes, settings.max_tensors)
    if head.sender != source or head.receiver != group.rank:
        raise WireFormatError(
            f"package header says rank {head.sender} -> {head.receiver}, but it came from rank {source} "
            f"to rank {group.rank}"
        )
    # 3. The body: in the frame after the header, or one more transfer of exactly its size.
    base = wire.HEADER_BYTES if head.inline else 0
    if not head.inline and cpu:
        block = bodies.take(head.body_bytes)
        transport.recv(block.whole[: head.body_bytes], source, settings.timeout, "receiving a package body")
        host = block.mem
    elif not head.inline:
        body = empty_bytes(head.body_bytes, group.device)
        transport.recv(body, source, settings.timeout, "receiving a package body")
    if not cpu:  # table and metadata are read on the host
        host, base_host = body[base + head.table_at : base + head.body_bytes].cpu().numpy(), -head.table_at
    else:
        base_host = base
    # 4. The table, checked against the header (an inline one once per distinct bytes and header).
    entries = _entries(host, base_host, raw, head)
    if head.codecs:
        _check_decoded(entries, settings.max_message_bytes)
    # 5. The tensors: views of the received bytes, decoded where a codec or a narrower dtype was used.
    if cpu:
        tensors, nbytes = _host_tensors(block, base, entries, settings.restore_dtypes)
    else:
        tensors, nbytes = _strided_tensors(body, base, entries, settings.restore_dtypes)
    # 6. The metadata section.
    meta = decode_meta(host, base_host + head.meta_at, head.meta_bytes) if head.meta_bytes else {}
    # 7. The message code, last: a bad one is reported with the stream still in step.
    code = to_message_code(head.message_code, source)
    return _new_incoming(Incoming, (source, code, tensors or None, meta, nbytes))


def unpack(body: Tensor, head: wire.Header, *, restore_dtypes: bool = True) -> list[Tensor]:
    """Return the tensors of a body in memory as views into it (decoded or cast where the sender asked).

    Args:
        body: 1-D uint8 tensor of exactly `head.body_bytes` bytes, starting 8-byte aligned.
        head: the decoded header.
        restore_dtypes: give tensors sent in a narrower wire dtype back in their original dtype.

    Raises:
        WireFormatError: the body has the wrong size, or the table contradicts the header or itself.
    """
    if body.dtype != torch.uint8 or body.dim() != 1 or body.numel() != head.body_bytes:
        raise WireFormatError(
            f"body must be a 1-D uint8 tensor of {head.body_bytes} bytes, got {body.dtype} of shape "
            f"{tuple(body.shape)}"
        )
    if not head.count:
        return []
    tail = body[head.table_at :].cpu().numpy()
    entries = wire.parse_table(tail, 0, head)
    if head.codecs:
        _check_decoded(entries, wire.DEFAULT_MAX_MESSAGE_BYTES)
    return _strided_tensors(body, 0, entries, restore_dtypes)[0]


def _check_decoded(entries: list[wire.Entry], limit: int) -> None:
    """Refuse a package whose codec tensors would decode to more than `limit` bytes, before decoding."""
    total = sum(math.prod(e.shape) * wire.ITEMSIZE_BY_CODE[e.dtype_code] for e in entries if e.codec)
    if total > limit:
        raise WireFormatError(f"codec tensors would decode to {total} bytes, over max_message_bytes={limit}")


_new_incoming = tuple.__new__  # an Incoming without NamedTuple's keyword handling (small-message path)
_INLINE_TABLES: dict[tuple[bytes, bytes], list[wire.Entry]] = {}


def _entries(host: np.ndarray, base: int, raw: bytes, head: wire.Header) -> list[wire.Entry]:
    """The checked table entries; an inline table is parsed once per distinct (header, table) bytes.

    A peer sends the same shapes message after message: the result depends only on those bytes,
    every new table is checked in full, and errors are never remembered.
    """
    if not head.count:
        return []
    start = base + ((head.payload_bytes + 7) & ~7)
    if not head.inline:
        return wire.parse_table(host, start, head)
    key = (raw, host[start : start + head.table_bytes].tobytes())
    found = _INLINE_TABLES.get(key)
    if found is None:
        found = wire.parse_table(key[1], 0, head)
        if len(_INLINE_TABLES) >= 64:
            _INLINE_TABLES.clear()
        _INLINE_TABLES[key] = found
    return found


def _host_tensors(
    block: HostBlock, base: int, entries: list[wire.Entry], restore: bool
) -> tuple[list[Tensor], int]:
    """Cut the tensors out of a received CPU block, each a watched view of its memory."""
    mem, hand_out, dtypes, sizes = block.mem, block.hand_out, wire.DTYPE_BY_CODE, wire.ITEMSIZE_BY_CODE
    out = []
    nbytes = 0
    for code, want, shape, offset, size, codec in entries:
        nbytes += size
        if codec:
            blob = hand_out(torch.frombuffer(mem, dtype=torch.uint8, count=size, offset=base + offset))
            out.append(decode_blob(codec, blob, shape, dtypes[want]))
        elif not size:  # no bytes to view
            out.append(torch.empty(shape, dtype=dtypes[want if restore else code]))
        else:
            t = hand_out(
                torch.frombuffer(mem, dtype=dtypes[code], count=size // sizes[code], offset=base + offset)
            )
            if len(shape) != 1:
                t = t.view(shape)
            out.append(ops.cast(t, dtypes[want]) if restore and want != code else t)
    return out, nbytes


def _strided_tensors(
    buf: Tensor, base: int, entries: list[wire.Entry], restore: bool
) -> tuple[list[Tensor], int]:
    """Cut the tensors out of bytes [base, ...) of a uint8 tensor on any device, as views of it."""
    out = []
    typed: dict[int, tuple[Tensor, int]] = {}
    numel = buf.numel()
    nbytes = 0
    for e in entries:
        nbytes += e.nbytes
        if e.codec:
            blob = buf[base + e.offset : base + e.offset + e.nbytes]
            out.append(decode_blob(e.codec, blob, e.shape, wire.DTYPE_BY_CODE[e.dtype_code]))
            continue
        size = wire.ITEMSIZE_BY_CODE[e.code]
        found = typed.get(e.code)
        if found is None:
            whole = buf if numel % size == 0 else buf[: numel // size * size]
            view = whole.view(wire.DTYPE_BY_CODE[e.code])
            found = typed[e.code] = (view, view.storage_offset())
        t = found[0].as_strided(
            e.shape, wire.contiguous_strides(e.shape), found[1] + (base + e.offset) // size
        )
        out.append(ops.cast(t, wire.DTYPE_BY_CODE[e.dtype_code]) if restore and e.dtype_code != e.code else t)
    return out, nbytes

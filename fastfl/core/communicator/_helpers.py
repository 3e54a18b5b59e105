"""Helpers of Package: message codes, frame buffers and the copy of small packages."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fastfl.core.communicator import wire
from fastfl.core.communicator.codecs import EncodedTensor, get_codec
from fastfl.dtypes import code_of
from fastfl.errors import PackageError, PackageTypeError, WireFormatError
from fastfl.utils.message_code import MessageCode

HEAD_ROOM = wire.HEADER_BYTES
DEFAULT_MESSAGE_CODE_VALUE = 0


def message_code_value(message_code: MessageCode | int | None) -> int:
    """Return the integer a message code travels as (None is 0, as in FedLab)."""
    if message_code is None:
        return DEFAULT_MESSAGE_CODE_VALUE
    if isinstance(message_code, MessageCode):
        return int(message_code.value)
    if isinstance(message_code, int) and not isinstance(message_code, bool):
        return message_code
    raise PackageTypeError(
        f"message_code can only be MessageCode or integer, not {type(message_code).__name__}"
    )


_CODES: dict[int, MessageCode] = {int(m.value): m for m in MessageCode}


def to_message_code(code: int, sender: int) -> MessageCode:
    """Return the MessageCode of a received integer, or raise WireFormatError naming the sender."""
    found = _CODES.get(code)
    if found is not None:
        return found
    try:
        return MessageCode(code)
    except ValueError:
        known = ", ".join(f"{m.value} ({m.name})" for m in MessageCode)
        raise WireFormatError(
            f"unknown message code {code} from rank {sender}; known codes: {known}"
        ) from None


def zero_frame(device: torch.device) -> Tensor:
    """A zeroed frame-sized buffer (through numpy on the CPU: calloc is cheaper than torch.zeros)."""
    if device.type == "cpu":
        return torch.from_numpy(np.zeros(wire.FRAME_BYTES, dtype=np.uint8))
    return torch.zeros(wire.FRAME_BYTES, dtype=torch.uint8, device=device)


def copy_small(buf: Tensor, srcs: list[Tensor], offsets: list[int], dtypes: list[torch.dtype]) -> None:
    """Pack a package that fits in one frame: a few bytes, where a copy per tensor beats the kernel call."""
    for t, off, dt in zip(srcs, offsets, dtypes, strict=True):
        size = wire.ITEMSIZE[dt]
        shape = tuple(t.shape)
        buf.view(dt).as_strided(shape, wire.contiguous_strides(shape), (HEAD_ROOM + off) // size).copy_(t)


def write_header(frame: Tensor, raw: bytes) -> None:
    """Write header bytes at the start of a frame (through numpy on the CPU: no tensor ops)."""
    if frame.device.type == "cpu":
        memoryview(frame.numpy())[: len(raw)] = raw
    else:
        frame[: len(raw)].copy_(as_bytes(raw))


def as_bytes(raw: bytes) -> Tensor:
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


def checked(t: object, i: int) -> Tensor | EncodedTensor:
    """Return content item `i` ready to pack: a contiguous tensor of a supported dtype, or a checked EncodedTensor.

    Raises:
        PackageTypeError: not a tensor, or a dtype without a code.
        PackageError: an EncodedTensor with an unknown codec, a bad shape or a blob that is not 1-D uint8.
    """
    if isinstance(t, EncodedTensor):
        return _checked_encoded(t, i)
    if not isinstance(t, Tensor):
        raise PackageTypeError(
            f"Invalid content type, expecting torch.Tensor but get {type(t).__name__} (item {i})"
        )
    try:
        code_of(t.dtype)
    except TypeError as err:
        raise PackageTypeError(f"content[{i}]: {err}") from None
    return t if t.is_contiguous() else t.contiguous()


def _checked_encoded(t: EncodedTensor, i: int) -> EncodedTensor:
    try:
        get_codec(t.codec)
    except WireFormatError as err:
        raise PackageError(f"content[{i}]: {err}") from None
    shape = tuple(t.shape) if isinstance(t.shape, tuple | list | torch.Size) else None
    if (
        shape is None
        or len(shape) > wire.MAX_NDIM
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)
    ):
        raise PackageError(
            f"content[{i}]: EncodedTensor shape must be a tuple of non-negative ints, got {t.shape!r}"
        )
    try:
        code_of(t.dtype)
    except TypeError as err:
        raise PackageTypeError(f"content[{i}]: {err}") from None
    blob = t.blob
    if not isinstance(blob, Tensor) or blob.dtype != torch.uint8 or blob.dim() != 1:
        raise PackageError(f"content[{i}]: EncodedTensor blob must be a 1-D uint8 tensor")
    return EncodedTensor(t.codec, shape, t.dtype, blob if blob.is_contiguous() else blob.contiguous())

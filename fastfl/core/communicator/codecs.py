"""Codecs on the wire: a registry of tensor encoders/decoders, and the already-encoded tensor type.

A package may hold an `EncodedTensor` (a blob made by a codec, with the shape and dtype it decodes
to). fastfl's wire format sends the blob with the codec's code in the tensor table; the receiver
looks the code up here and hands out the decoded tensor. Codes: 0 means raw (no codec), 1 is
"qsgd", 2 is "sparse" (top-k, random-k and DGC: indices and values); fastfl.contrib.compressor
registers them. An unknown code is a `WireFormatError` naming it. docs/wire.md has the bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from fastfl.errors import CodecError, WireFormatError

__all__ = ["Codec", "EncodedTensor", "get_codec", "register_codec", "registered_codecs"]


@dataclass(frozen=True)
class Codec:
    """A tensor encoder/decoder pair with a code that names it on the wire.

    Attributes:
        code: 1..255 (0 means raw, no codec).
        name: a short name, unique among the registered codecs.
        encode: float tensor -> 1-D uint8 blob.
        decode: (blob, shape, dtype) -> tensor of that shape and dtype.
    """

    code: int
    name: str
    encode: Callable[[Tensor], Tensor]
    decode: Callable[[Tensor, tuple[int, ...], torch.dtype], Tensor]


class EncodedTensor(NamedTuple):
    """An already-encoded tensor placed in a package's content.

    Attributes:
        codec: the code of the codec that made `blob`.
        shape: the shape the receiver gets back.
        dtype: the dtype the receiver gets back.
        blob: the encoded bytes, a 1-D uint8 CPU tensor.
    """

    codec: int
    shape: tuple[int, ...]
    dtype: torch.dtype
    blob: Tensor


_BY_CODE: dict[int, Codec] = {}
_BY_NAME: dict[str, Codec] = {}
_LOCK = threading.Lock()
_contrib_tried = False


def register_codec(codec: Codec) -> None:
    """Make `codec` known to senders and receivers in this process (registering it again is a no-op).

    Raises:
        CodecError: the code is outside 1..255, or another codec already has that code or name.
    """
    if not isinstance(codec, Codec):
        raise CodecError(f"register_codec takes a Codec, got {type(codec).__name__}")
    if isinstance(codec.code, bool) or not isinstance(codec.code, int) or not 1 <= codec.code <= 255:
        raise CodecError(f"codec code must be an integer in 1..255 (0 means raw), got {codec.code!r}")
    with _LOCK:
        for other in (_BY_CODE.get(codec.code), _BY_NAME.get(codec.name)):
            if other is not None and other != codec:
                raise CodecError(
                    f"codec {codec.name!r} (code {codec.code}) clashes with the registered "
                    f"{other.name!r} (code {other.code})"
                )
        _BY_CODE[codec.code] = codec
        _BY_NAME[codec.name] = codec


def get_codec(code_or_name: int | str) -> Codec:
    """Return the registered codec with this code or name.

    On a miss, fastfl.contrib.compressor (which registers fastfl's own codecs) is imported once
    and the lookup repeated.

    Raises:
        WireFormatError: no codec has this code or name; the message lists the known ones.
    """
    found = _lookup(code_or_name)
    if found is None:
        _import_contrib()
        found = _lookup(code_or_name)
    if found is None:
        known = ", ".join(f"{c.code} ({c.name})" for c in sorted(_BY_CODE.values(), key=lambda c: c.code))
        raise WireFormatError(
            f"unknown codec {code_or_name!r}; known codecs: {known or 'none'} (register_codec adds one)"
        )
    return found


def registered_codecs() -> list[Codec]:
    """The codecs known in this process, by code."""
    return sorted(_BY_CODE.values(), key=lambda c: c.code)


def _lookup(code_or_name: int | str) -> Codec | None:
    if isinstance(code_or_name, str):
        return _BY_NAME.get(code_or_name)
    return _BY_CODE.get(code_or_name)


def _import_contrib() -> None:
    global _contrib_tried
    if _contrib_tried:
        return
    _contrib_tried = True
    try:
        import fastfl.contrib.compressor  # noqa: F401 - registers fastfl's codecs
    except ModuleNotFoundError as err:  # not there in this install; a broken one still raises
        if err.name not in ("fastfl.contrib", "fastfl.contrib.compressor"):
            raise


def decode_blob(codec_code: int, blob: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Decode one received blob through the registry, checking what the codec returns.

    Raises:
        WireFormatError: the codec is unknown, fails on the blob, or returns the wrong shape or dtype.
    """
    codec = get_codec(codec_code)
    try:
        out = codec.decode(blob, shape, dtype)
    except (ValueError, TypeError, RuntimeError, IndexError) as err:
        raise WireFormatError(
            f"codec {codec.name!r} could not decode a {blob.numel()}-byte blob: {err}"
        ) from err
    if not isinstance(out, Tensor) or tuple(out.shape) != tuple(shape) or out.dtype != dtype:
        got = f"{out.dtype} {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
        raise WireFormatError(f"codec {codec.name!r} decoded to {got}; the table says {dtype} {tuple(shape)}")
    return out

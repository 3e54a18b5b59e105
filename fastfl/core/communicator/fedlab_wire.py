"""FedLab 1.2.1's three-message wire format, wholly: header fields, slices, sending and receiving.

A package is an int32[5] header (sender, receiver, slice size, message code, dtype code), then,
when the slice size is positive, the int32 slices ([numel, ndim, *shape] per tensor) and the
content (all tensors back to back in one of FedLab's seven dtypes). Unlike FedLab, the receiver
sizes the content buffer as the sum of the numels (B2), checks every size before allocating, uses
the rank torch reports rather than the header's sender field, and reads the message code only
after the whole package has arrived, so a bad code does not desynchronise the stream.

`Package` (package.py) uses this module's header constants and parsers for its FedLab face; this
module uses a package only through that face (`header`, `count`, `content`, `slices`, `dtype`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from fastfl import ops
from fastfl.core.communicator import transport
from fastfl.core.communicator._helpers import to_message_code
from fastfl.core.communicator.wire import DEFAULT_MAX_TENSORS, ITEMSIZE, MAX_NDIM
from fastfl.dtypes import DType, code_of, torch_dtype
from fastfl.errors import WireFormatError
from fastfl.utils.message_code import MessageCode

if TYPE_CHECKING:
    from fastfl.core.communicator.package import Package

HEADER_SENDER_RANK_IDX = 0
HEADER_RECEIVER_RANK_IDX = 1
HEADER_SLICE_SIZE_IDX = 2
HEADER_MESSAGE_CODE_IDX = 3
HEADER_DATA_TYPE_IDX = 4
DEFAULT_RECEIVER_RANK = -1
DEFAULT_SLICE_SIZE = 0
HEADER_SIZE = 5
FEDLAB_MAX_CODE = int(DType.FLOAT64)


def parse_slices(slices: Sequence[int] | np.ndarray) -> list[tuple[int, tuple[int, ...]]]:
    """Return (numel, shape) per tensor from FedLab slices (a list or an int array), checking every record.

    Raises:
        WireFormatError: a record is truncated, has a negative entry, or its shape does not
            multiply to its numel.
    """
    records = []
    i = 0
    while i < len(slices):
        if i + 2 > len(slices):
            raise WireFormatError(f"slices end inside a record at entry {i} of {len(slices)}")
        numel, ndim = int(slices[i]), int(slices[i + 1])
        if numel < 0 or not 0 <= ndim <= MAX_NDIM or i + 2 + ndim > len(slices):
            raise WireFormatError(f"bad slice record at entry {i}: numel {numel}, ndim {ndim}")
        shape = tuple(int(d) for d in slices[i + 2 : i + 2 + ndim])
        if any(d < 0 for d in shape) or math.prod(shape) != numel:
            raise WireFormatError(f"slice record at entry {i}: shape {shape} does not hold {numel} elements")
        records.append((numel, shape))
        i += 2 + ndim
    return records


def parse_content(slices: Sequence[int], content: Tensor | None) -> list[Tensor]:
    """Cut FedLab's 1-D content into tensors of the shapes in `slices` (views); `Package.parse_content`.

    An empty package's slices and content (`[]`, None) give `[]`, as in FedLab.

    Raises:
        WireFormatError: the slices are malformed or do not match the content's length.
    """
    records = parse_slices(list(slices))
    if not records and content is None:
        return []
    total = sum(n for n, _ in records)
    if not isinstance(content, Tensor) or content.dim() != 1 or content.numel() != total:
        what = (
            f"a tensor of shape {tuple(content.shape)}"
            if isinstance(content, Tensor)
            else type(content).__name__
        )
        raise WireFormatError(f"slices describe {total} elements but content is {what}")
    return [
        t.view(shape) for t, (_, shape) in zip(content.split([n for n, _ in records]), records, strict=True)
    ]


def parse_header(header: Tensor) -> tuple[int, int, int, MessageCode, int]:
    """Return (sender_rank, receiver_rank, slice_size, message_code, data_type); `Package.parse_header`.

    Raises:
        WireFormatError: the header is not 5 integers or carries an unknown message code.
    """
    if not isinstance(header, Tensor) or header.numel() != HEADER_SIZE or header.is_floating_point():
        raise WireFormatError(f"a FedLab header is {HEADER_SIZE} integers, got {header!r}")
    sender, receiver, slice_size, code, data_type = (int(v) for v in header.tolist())
    return sender, receiver, slice_size, to_message_code(code, sender), data_type


def fedlab_parts(package: Package, dst: int) -> list[Tensor]:
    """Return the tensors FedLab's format sends for `package`: header, and slices and content if any.

    Fills the header's sender, receiver and dtype fields, as FedLab's `send_package` does.
    `package.meta` has no place in this format and is not sent.

    Raises:
        WireFormatError: the package mixes dtypes, holds a dtype FedLab does not know, or holds
            codec-encoded tensors.
    """
    header = package.header
    header[HEADER_SENDER_RANK_IDX] = dist.get_rank()
    header[HEADER_RECEIVER_RANK_IDX] = dst
    if not package.count:
        return [header]
    if package.has_codecs:
        raise WireFormatError(
            "FedLab's format cannot carry codec-encoded tensors; send them with wire='fastfl'"
        )
    content = package.content  # raises for mixed dtypes
    code = int(code_of(package.dtype))
    if code > FEDLAB_MAX_CODE:
        raise WireFormatError(
            f"FedLab's format cannot carry {package.dtype}; convert with package.to(torch.float32) first"
        )
    header[HEADER_DATA_TYPE_IDX] = code
    return [header, torch.tensor(package.slices, dtype=torch.int32), content]


def recv_fedlab(
    src: int | None, timeout: float, max_message_bytes: int, max_tensors: int = DEFAULT_MAX_TENSORS
) -> tuple[int, MessageCode, list[Tensor] | None]:
    """Receive one package in FedLab's format; return (sender rank, code, tensors or None).

    The slice count is checked against both limits before the slices are received: a record is
    at least 2 and at most 2 + MAX_NDIM entries, so `max_tensors` bounds it too.
    """
    header = torch.empty(HEADER_SIZE, dtype=torch.int32)
    source = transport.recv(header, src, timeout, "receiving a FedLab header")
    _sender, _receiver, slice_size, code, dtype_code = header.tolist()
    if slice_size <= 0:
        return source, to_message_code(code, source), None
    if 4 * slice_size > max_message_bytes or slice_size > max_tensors * (2 + MAX_NDIM):
        raise WireFormatError(
            f"FedLab header from rank {source} announces {slice_size} slice entries; too many for "
            f"max_message_bytes={max_message_bytes} and max_tensors={max_tensors}"
        )
    if not 0 <= dtype_code <= FEDLAB_MAX_CODE:
        raise WireFormatError(f"FedLab header from rank {source} has unknown dtype code {dtype_code}")
    slices = torch.empty(slice_size, dtype=torch.int32)
    transport.recv(slices, source, timeout, "receiving FedLab slices")
    records = parse_slices(slices.numpy())  # no list of every entry: the records are what is kept
    if len(records) > max_tensors:
        raise WireFormatError(
            f"FedLab package from rank {source} holds {len(records)} tensors, over max_tensors={max_tensors}"
        )
    dtype = torch_dtype(dtype_code)
    numel = sum(n for n, _ in records)
    if numel * ITEMSIZE[dtype] > max_message_bytes:
        raise WireFormatError(
            f"FedLab package from rank {source} holds {numel * ITEMSIZE[dtype]} bytes, over "
            f"max_message_bytes={max_message_bytes}"
        )
    content = ops.empty(numel, dtype=dtype)  # large: huge-page-advised or pooled (fastfl.ops.empty)
    transport.recv(content, source, timeout, "receiving FedLab content")
    tensors = [
        t.view(shape) for t, (_, shape) in zip(content.split([n for n, _ in records]), records, strict=True)
    ]
    return source, to_message_code(code, source), tensors

"""fastfl.core.communicator: Package, PackageProcessor, the header constants and the dtype codes.

The names and values are FedLab 1.2.1's (`fedlab.core.communicator`); the dtype table is the one
in `fastfl.dtypes`, which adds bfloat16 (7), uint8 (8) and bool (9) to FedLab's seven codes.
"""

from __future__ import annotations

import torch

from fastfl.core.communicator.package import (
    DEFAULT_MESSAGE_CODE_VALUE,
    DEFAULT_RECEIVER_RANK,
    DEFAULT_SLICE_SIZE,
    HEADER_DATA_TYPE_IDX,
    HEADER_MESSAGE_CODE_IDX,
    HEADER_RECEIVER_RANK_IDX,
    HEADER_SENDER_RANK_IDX,
    HEADER_SIZE,
    HEADER_SLICE_SIZE_IDX,
    Package,
)
from fastfl.core.communicator.processor import PackageProcessor
from fastfl.dtypes import TORCH_DTYPES, DType, code_of, torch_dtype
from fastfl.errors import DtypeCodeError, DtypeError

__all__ = [
    "BFLOAT16",
    "BOOL",
    "DEFAULT_MESSAGE_CODE_VALUE",
    "DEFAULT_RECEIVER_RANK",
    "DEFAULT_SLICE_SIZE",
    "FLOAT16",
    "FLOAT32",
    "FLOAT64",
    "HEADER_DATA_TYPE_IDX",
    "HEADER_MESSAGE_CODE_IDX",
    "HEADER_RECEIVER_RANK_IDX",
    "HEADER_SENDER_RANK_IDX",
    "HEADER_SIZE",
    "HEADER_SLICE_SIZE_IDX",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "Package",
    "PackageProcessor",
    "dtype_flab2torch",
    "dtype_torch2flab",
    "supported_torch_dtypes",
]

INT8 = int(DType.INT8)
INT16 = int(DType.INT16)
INT32 = int(DType.INT32)
INT64 = int(DType.INT64)
FLOAT16 = int(DType.FLOAT16)
FLOAT32 = int(DType.FLOAT32)
FLOAT64 = int(DType.FLOAT64)
BFLOAT16 = int(DType.BFLOAT16)
UINT8 = int(DType.UINT8)
BOOL = int(DType.BOOL)

supported_torch_dtypes: list[torch.dtype] = [TORCH_DTYPES[c] for c in DType]


def dtype_torch2flab(torch_type: torch.dtype) -> int:
    """Return the dtype code of a torch dtype.

    Raises:
        DtypeError: (a TypeError) the dtype has no code; FedLab raised ValueError from `list.index`.
    """
    try:
        return int(code_of(torch_type))
    except TypeError as err:
        raise DtypeError(str(err)) from None


def dtype_flab2torch(fedlab_type: int) -> torch.dtype:
    """Return the torch dtype of a code.

    Raises:
        DtypeCodeError: (a ValueError) an unknown code, negative ones included (FedLab wraps -1 to float64).
    """
    try:
        return torch_dtype(fedlab_type)
    except ValueError as err:
        raise DtypeCodeError(str(err)) from None

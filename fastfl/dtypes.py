"""The one dtype table: fastfl's dtype codes (FedLab's seven plus three), torch dtypes and sizes.

The codes are shared by the wire format and the compiled kernels (csrc/fastfl/dtype.hpp repeats
them; tests/test_native.py checks that both agree).
"""

from __future__ import annotations

import enum

import torch


class DType(enum.IntEnum):
    """Dtype codes. 0-6 are FedLab 1.2.1's codes; 7-9 are fastfl additions."""

    INT8 = 0
    INT16 = 1
    INT32 = 2
    INT64 = 3
    FLOAT16 = 4
    FLOAT32 = 5
    FLOAT64 = 6
    BFLOAT16 = 7
    UINT8 = 8
    BOOL = 9


TORCH_DTYPES: dict[DType, torch.dtype] = {
    DType.INT8: torch.int8,
    DType.INT16: torch.int16,
    DType.INT32: torch.int32,
    DType.INT64: torch.int64,
    DType.FLOAT16: torch.float16,
    DType.FLOAT32: torch.float32,
    DType.FLOAT64: torch.float64,
    DType.BFLOAT16: torch.bfloat16,
    DType.UINT8: torch.uint8,
    DType.BOOL: torch.bool,
}
CODES: dict[torch.dtype, DType] = {v: k for k, v in TORCH_DTYPES.items()}

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
HALF_DTYPES = (torch.float16, torch.bfloat16)


def code_of(dtype: torch.dtype) -> DType:
    """Return the code of a torch dtype.

    Raises:
        TypeError: the dtype has no code (complex types, float8, unsigned ints above 8 bits).
    """
    try:
        return CODES[dtype]
    except KeyError:
        names = ", ".join(str(d) for d in CODES)
        raise TypeError(f"dtype {dtype} is not supported; supported dtypes: {names}") from None


def torch_dtype(code: int) -> torch.dtype:
    """Return the torch dtype of a code.

    Raises:
        ValueError: the code is not a known dtype code.
    """
    try:
        return TORCH_DTYPES[DType(code)]
    except ValueError:
        raise ValueError(f"unknown dtype code {code}; known codes are 0..{len(DType) - 1}") from None


ITEMSIZES: dict[torch.dtype, int] = {d: d.itemsize for d in CODES}


def itemsize(dtype: torch.dtype) -> int:
    """Return the size in bytes of one element of `dtype` (a table look-up for known dtypes)."""
    size = ITEMSIZES.get(dtype)
    return dtype.itemsize if size is None else size

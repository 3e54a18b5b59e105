"""Half-float conversions for the numba kernels: float16 and bfloat16 bits to float32 and back.

float16 uses the CPU's F16C instructions when numba compiles for a CPU that has them (what
torch's SIMD path uses too); otherwise, and for bfloat16 always, bit manipulation on integers
that gives the same bits (tests/ops/test_fallback.py checks both against torch).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import config
from numba.extending import intrinsic

from fastfl.ops._numba_jit import bits_f32, f32_bits


def _has_f16c() -> bool:
    """Whether the code numba generates may use F16C (host CPU, or the CPU numba is told to target)."""
    if config.CPU_NAME is None:
        return bool(llvm.get_host_cpu_features().get("f16c", False))
    return "+f16c" in (config.CPU_FEATURES or "")


@intrinsic
def half_to_f32_hw(typingctx, h):
    """Decode float16 bits with the hardware conversion (vcvtph2ps)."""
    sig = types.float32(types.uint16)

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return sig, codegen


@intrinsic
def f32_to_half_hw(typingctx, x):
    """Encode float16 bits with the hardware conversion (vcvtps2ph, round to nearest even)."""
    sig = types.uint16(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return sig, codegen


@numba.njit
def half_to_f32_bits(h):
    """Decode float16 bits exactly; NaN payloads are kept with the quiet bit set."""
    h = np.int64(h)
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0x1F:
        bits = 0x7F800000 | (m << 13) | (0x400000 if m != 0 else 0)
    elif e == 0:
        bits = np.int64(f32_bits(np.float32(m) * np.float32(2.0**-24)))
    else:
        bits = ((e + 112) << 23) | (m << 13)
    return bits_f32(np.uint32(sign | bits))


@numba.njit
def f32_to_half_bits(x):
    """Encode a float32 as float16 bits, rounding to nearest even; NaN keeps its top payload bits."""
    b = np.int64(f32_bits(x))
    a = b & 0x7FFFFFFF
    if a > 0x7F800000:
        h = 0x7E00 | ((a >> 13) & 0x3FF)
    elif a >= 0x477FF000:  # 65520 and up round to infinity
        h = 0x7C00
    elif a >= 0x38800000:  # normal half: rebias the exponent, round the 13 dropped bits
        h = (a + 0xFFF + ((a >> 13) & 1) - 0x38000000) >> 13
    else:  # subnormal half: let the FPU round at 2**-24 by adding 0.5
        h = np.int64(f32_bits(bits_f32(np.uint32(a)) + np.float32(0.5))) - 0x3F000000
    return np.uint16(((b >> 16) & 0x8000) | h)


@numba.njit
def bf16_to_f32(h):
    """Decode bfloat16 bits (the top half of a float32)."""
    return bits_f32(np.uint32(np.int64(h) << 16))


@numba.njit
def f32_to_bf16(x, nan_bits):
    """Encode a float32 as bfloat16 bits, rounding to nearest even; NaN becomes nan_bits."""
    b = np.int64(f32_bits(x))
    if (b & 0x7FFFFFFF) > 0x7F800000:
        return np.uint16(nan_bits)
    return np.uint16((b + 0x7FFF + ((b >> 16) & 1)) >> 16)


HAS_F16C = _has_f16c()
half_to_f32 = half_to_f32_hw if HAS_F16C else half_to_f32_bits
f32_to_half = f32_to_half_hw if HAS_F16C else f32_to_half_bits

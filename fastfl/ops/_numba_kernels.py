"""numba kernels for aggregation arithmetic: weighted sum (FedAvg), accumulate and mix (FedAsync).

Tensors arrive as (address, dtype code) pairs; inputs may be float32, float64, float16 or
bfloat16, each converted on load. Multiply-adds are fused (`fma`), as in torch's vectorised
`add_(x, alpha=w)`, so results match the torch backend bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from fastfl.ops._numba_half import bf16_to_f32, f32_to_bf16, f32_to_half, half_to_f32
from fastfl.ops._numba_jit import (
    CHUNK,
    F16,
    F32,
    F64,
    ITEMSIZE,
    compile_kernel,
    fma,
    vptr,
)

carray = numba.carray


@numba.njit
def _fma_into(acc, addr, code, w, m):
    """acc[i] = fma(x[i], w, acc[i]) for the m floats x at addr, in acc's precision."""
    p = vptr(addr)
    if code == F32:
        f4 = carray(p, m, np.float32)
        for i in range(m):
            acc[i] = fma(f4[i], w, acc[i])
    elif code == F64:
        f8 = carray(p, m, np.float64)
        for i in range(m):
            acc[i] = fma(f8[i], w, acc[i])
    elif code == F16:
        h = carray(p, m, np.uint16)
        for i in range(m):
            acc[i] = fma(half_to_f32(h[i]), w, acc[i])
    else:
        h = carray(p, m, np.uint16)
        for i in range(m):
            acc[i] = fma(bf16_to_f32(h[i]), w, acc[i])


@numba.njit
def _weighted_range(addrs, codes, weights, out_addr, out_code, lo, hi, acc):
    """Elements [lo, hi) of the weighted sum, one L1-sized chunk of every input at a time."""
    for c in range(lo, hi, CHUNK):
        m = min(CHUNK, hi - c)
        acc[:m] = 0.0
        for k in range(addrs.size):
            _fma_into(acc, addrs[k] + c * ITEMSIZE[codes[k]], codes[k], weights[k], m)
        if out_code == F64:
            o8 = carray(vptr(out_addr + c * 8), m, np.float64)
            for i in range(m):
                o8[i] = acc[i]
        else:
            o4 = carray(vptr(out_addr + c * 4), m, np.float32)
            for i in range(m):
                o4[i] = acc[i]


def _weighted_sum(addrs, codes, weights, out_addr, out_code, acc_fp64, lo, hi):
    """Write out = sum_k weights[k] * x_k over elements [lo, hi), reading each input once."""
    if acc_fp64:
        _weighted_range(addrs, codes, weights, out_addr, out_code, lo, hi, np.empty(CHUNK, np.float64))
    else:
        _weighted_range(addrs, codes, weights, out_addr, out_code, lo, hi, np.empty(CHUNK, np.float32))


def _accumulate(acc_addr, acc_code, x_addr, x_code, weight, lo, hi):
    """Add weight * x to acc over elements [lo, hi); acc is float32 or float64."""
    xa = x_addr + lo * ITEMSIZE[x_code]
    if acc_code == F64:
        _fma_into(carray(vptr(acc_addr + lo * 8), hi - lo, np.float64), xa, x_code, weight, hi - lo)
    else:
        _fma_into(carray(vptr(acc_addr + lo * 4), hi - lo, np.float32), xa, x_code, weight, hi - lo)


@numba.njit
def _mix_into(s, coef, addr, code, m):
    """Set s = fma(x, coef[1], s * coef[0]) in s's precision (torch's mul_ then add_)."""
    for i in range(m):
        s[i] = s[i] * coef[0]
    _fma_into(s, addr, code, coef[1], m)


@numba.njit
def _mix_half(s_addr, s_code, n_addr, n_code, alpha, lo, hi):
    """Mix for a float16/bfloat16 s: widen a chunk to float32, mix, round back."""
    c4 = np.array([1.0 - alpha, alpha], dtype=np.float32)
    wide = np.empty(CHUNK, np.float32)
    for c in range(lo, hi, CHUNK):
        m = min(CHUNK, hi - c)
        h = carray(vptr(s_addr + c * 2), m, np.uint16)
        if s_code == F16:
            for i in range(m):
                wide[i] = half_to_f32(h[i])
        else:
            for i in range(m):
                wide[i] = bf16_to_f32(h[i])
        _mix_into(wide, c4, n_addr + c * ITEMSIZE[n_code], n_code, m)
        if s_code == F16:
            for i in range(m):
                h[i] = f32_to_half(wide[i])
        else:
            for i in range(m):
                h[i] = f32_to_bf16(wide[i], 0xFFFF)


def _mix(s_addr, s_code, n_addr, n_code, alpha, lo, hi):
    """Set s = (1 - alpha) * s + alpha * x in place over [lo, hi); float64 math if s is float64."""
    xa = n_addr + lo * ITEMSIZE[n_code]
    if s_code == F64:
        c8 = np.array([1.0 - alpha, alpha], dtype=np.float64)
        _mix_into(carray(vptr(s_addr + lo * 8), hi - lo, np.float64), c8, xa, n_code, hi - lo)
    elif s_code == F32:
        c4 = np.array([1.0 - alpha, alpha], dtype=np.float32)
        _mix_into(carray(vptr(s_addr + lo * 4), hi - lo, np.float32), c4, xa, n_code, hi - lo)
    else:
        _mix_half(s_addr, s_code, n_addr, n_code, alpha, lo, hi)


weighted_sum = compile_kernel(_weighted_sum)
accumulate = compile_kernel(_accumulate)
mix = compile_kernel(_mix)

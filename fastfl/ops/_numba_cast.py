"""numba kernels that move floats between dtypes: cast (copy with dtype change) and combine (+= alpha * src).

Tensors arrive as (address, dtype code) pairs, so one compiled kernel serves every pair of
float32, float64, float16 and bfloat16, and copies between equal dtypes of any kind (`_numba.py`
sends the integer and bool pairs through numpy). The hot pairs have direct loops; the others go
through a scratch chunk of float64. Results are bitwise those of torch's `copy_`: float64 reaches
the half types through float32, NaN payloads follow torch's SIMD path, and the last elements of a
small tensor, which torch converts without SIMD, get torch's scalar NaN bits.
"""

from __future__ import annotations

import numba
import numpy as np

from fastfl.ops._numba_half import bf16_to_f32, f32_to_bf16, f32_to_half, half_to_f32
from fastfl.ops._numba_jit import BF16, CHUNK, F16, F32, F64, ITEMSIZE, compile_kernel, memcpy, vptr

carray = numba.carray
TORCH_GRAIN = 32768  # at::internal::GRAIN_SIZE: torch converts smaller tensors on one thread


@numba.njit
def _decode(addr, code, m, fb):
    """Read m floats of dtype `code` at addr into the float64 scratch fb (exactly)."""
    p = vptr(addr)
    if code == F32:
        f4 = carray(p, m, np.float32)
        for i in range(m):
            fb[i] = f4[i]
    elif code == F64:
        f8 = carray(p, m, np.float64)
        for i in range(m):
            fb[i] = f8[i]
    elif code == F16:
        h = carray(p, m, np.uint16)
        for i in range(m):
            fb[i] = half_to_f32(h[i])
    else:
        h = carray(p, m, np.uint16)
        for i in range(m):
            fb[i] = bf16_to_f32(h[i])


@numba.njit
def _encode(fb, addr, code, m, nan_bf16):
    """Write m scratch values as dtype `code` at addr, rounding to nearest even (halves via float32)."""
    p = vptr(addr)
    if code == F64:
        f8 = carray(p, m, np.float64)
        for i in range(m):
            f8[i] = fb[i]
    elif code == F32:
        f4 = carray(p, m, np.float32)
        for i in range(m):
            f4[i] = np.float32(fb[i])
    elif code == F16:
        h = carray(p, m, np.uint16)
        for i in range(m):
            h[i] = f32_to_half(np.float32(fb[i]))
    else:
        h = carray(p, m, np.uint16)
        for i in range(m):
            h[i] = f32_to_bf16(np.float32(fb[i]), nan_bf16)


@numba.njit
def _direct(sa, sc, da, dc, m):
    """Convert m elements of a hot pair in one loop; return False for other pairs."""
    if sc == dc:
        memcpy(da, sa, m * ITEMSIZE[sc])
    elif sc == F32 and dc in (F16, BF16):
        f4 = carray(vptr(sa), m, np.float32)
        h = carray(vptr(da), m, np.uint16)
        if dc == F16:
            for i in range(m):
                h[i] = f32_to_half(f4[i])
        else:
            for i in range(m):
                h[i] = f32_to_bf16(f4[i], 0xFFFF)
    elif dc == F32 and sc in (F16, BF16):
        h = carray(vptr(sa), m, np.uint16)
        u4 = carray(vptr(da), m, np.uint32)
        if sc == F16:
            f4 = u4.view(np.float32)
            for i in range(m):
                f4[i] = half_to_f32(h[i])
        else:  # a bit shift, so signalling NaNs stay signalling as in torch
            for i in range(m):
                u4[i] = np.uint32(h[i]) << 16
    else:
        return False
    return True


@numba.njit
def _scalar_tail(sa, sc, da, dc, i0, i1, n, simd_bytes):
    """Give NaNs in torch's non-SIMD tail (the last n % width elements) torch's scalar NaN bits.

    Only below torch's grain size: bigger tensors are split over threads, each with its own tail.
    """
    if n >= TORCH_GRAIN:
        return
    if sc == F16 and dc == F32:
        h = carray(vptr(sa), n, np.uint16)
        u4 = carray(vptr(da), n, np.uint32)
        for i in range(max(i0, n - n % (simd_bytes // 4)), i1):
            if (h[i] & 0x7FFF) > 0x7C00:
                u4[i] = 0x7FFFFFFF
    elif sc == F64 and dc == BF16:
        f8 = carray(vptr(sa), n, np.float64)
        u2 = carray(vptr(da), n, np.uint16)
        for i in range(max(i0, n - n % (simd_bytes // 2)), i1):
            if f8[i] != f8[i]:
                u2[i] = 0x7FC0


@numba.njit
def _cast_range(sa, sc, da, dc, i0, i1, n, simd_bytes, fb):
    """Convert elements [i0, i1) of one (src, dst) pair of n elements."""
    ssize, dsize = ITEMSIZE[sc], ITEMSIZE[dc]
    if not _direct(sa + i0 * ssize, sc, da + i0 * dsize, dc, i1 - i0):
        nan_bf16 = 0x7FC0 if sc == F16 else 0xFFFF
        for c in range(i0, i1, CHUNK):
            m = min(CHUNK, i1 - c)
            _decode(sa + c * ssize, sc, m, fb)
            _encode(fb, da + c * dsize, dc, m, nan_bf16)
    _scalar_tail(sa, sc, da, dc, i0, i1, n, simd_bytes)


@numba.njit
def _first_pair(starts, lo):
    """Index of the last pair p with starts[p] <= lo (binary search; empty pairs are skipped later)."""
    first, last = 0, starts.size - 1
    while last - first > 1:
        mid = (first + last) // 2
        if starts[mid] <= lo:
            first = mid
        else:
            last = mid
    return first


def _cast(saddr, scode, daddr, dcode, starts, simd_bytes, lo, hi):
    """Pair p: copy elements starts[p]..starts[p+1] from saddr[p] to daddr[p], casting; only [lo, hi)."""
    fb = np.empty(CHUNK, np.float64)
    p = _first_pair(starts, lo)
    while lo < hi:
        end = min(hi, starts[p + 1])
        if end > lo:
            n = starts[p + 1] - starts[p]
            i0, i1 = lo - starts[p], end - starts[p]
            _cast_range(saddr[p], scode[p], daddr[p], dcode[p], i0, i1, n, simd_bytes, fb)
        lo = end
        p += 1


@numba.njit
def _combine_same(sa, da, code, m, alpha):
    """Add alpha * src to dst when both are float32 (or both float64): one direct loop."""
    if code == F64:
        s8 = carray(vptr(sa), m, np.float64)
        d8 = carray(vptr(da), m, np.float64)
        for i in range(m):
            d8[i] = d8[i] + alpha * s8[i]
    else:
        a32 = np.float32(alpha)
        s4 = carray(vptr(sa), m, np.float32)
        d4 = carray(vptr(da), m, np.float32)
        for i in range(m):
            d4[i] = d4[i] + a32 * s4[i]


@numba.njit
def _combine_range(sa, sc, da, dc, i0, i1, alpha, fb, gb):
    """Add alpha * src to dst over [i0, i1): float64 math if either is float64, else float32."""
    if sc == dc and sc in (F32, F64):
        _combine_same(sa + i0 * ITEMSIZE[sc], da + i0 * ITEMSIZE[sc], sc, i1 - i0, alpha)
        return
    a32 = np.float32(alpha)
    for c in range(i0, i1, CHUNK):
        m = min(CHUNK, i1 - c)
        _decode(da + c * ITEMSIZE[dc], dc, m, fb)
        _decode(sa + c * ITEMSIZE[sc], sc, m, gb)
        if sc == F64 or dc == F64:
            for i in range(m):
                fb[i] = fb[i] + alpha * gb[i]
        else:
            for i in range(m):
                fb[i] = np.float32(fb[i]) + a32 * np.float32(gb[i])
        _encode(fb, da + c * ITEMSIZE[dc], dc, m, 0xFFFF)


def _combine(saddr, scode, daddr, dcode, starts, alpha, lo, hi):
    """Pair p: dst[p] += alpha * src[p], rounded once into dst's dtype; only elements [lo, hi)."""
    fb = np.empty(CHUNK, np.float64)
    gb = np.empty(CHUNK, np.float64)
    p = _first_pair(starts, lo)
    while lo < hi:
        end = min(hi, starts[p + 1])
        if end > lo:
            i0, i1 = lo - starts[p], end - starts[p]
            _combine_range(saddr[p], scode[p], daddr[p], dcode[p], i0, i1, alpha, fb, gb)
        lo = end
        p += 1


cast = compile_kernel(_cast)
combine = compile_kernel(_combine)

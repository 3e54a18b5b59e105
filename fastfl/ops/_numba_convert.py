"""numba kernels that move elements between dtypes: convert (copy with cast) and combine (+= alpha * src).

Tensors arrive as (address, dtype code) pairs, so one compiled kernel serves all 100 dtype pairs.
The hot float pairs have direct loops; every other pair goes through a scratch chunk: decoded to
float64 (float codes) or int64 (integer codes), then encoded into the destination dtype. Results
are bitwise those of torch's `copy_`: float64 and integers reach the half types through float32,
floats reach integers by truncation (through int32 for int8/int16/int32 and through int64 for
uint8 and int64, as c10 does, with x86's INT_MIN for NaN and out-of-range values), NaN payloads
follow torch's SIMD path, and the last elements of a tensor that torch converts without SIMD get
its scalar NaN bits.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from fastfl.ops._numba_jit import (
    BF16,
    BOOL,
    CHUNK,
    F16,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    ITEMSIZE,
    U8,
    bf16_to_f32,
    block,
    compile_pair,
    f32_to_bf16,
    f32_to_half,
    half_to_f32,
    is_float,
    vptr,
)

carray = numba.carray
TORCH_GRAIN = 32768  # at::internal::GRAIN_SIZE: torch converts smaller tensors on one thread


@numba.njit
def _decode(addr, code, m, fb, ib):
    """Read m elements at addr into fb (float codes, as float64) or ib (integer codes, as int64)."""
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
    elif code == BF16:
        h = carray(p, m, np.uint16)
        for i in range(m):
            fb[i] = bf16_to_f32(h[i])
    elif code == I8:
        i1 = carray(p, m, np.int8)
        for i in range(m):
            ib[i] = i1[i]
    elif code == I16:
        i2 = carray(p, m, np.int16)
        for i in range(m):
            ib[i] = i2[i]
    elif code == I32:
        i4 = carray(p, m, np.int32)
        for i in range(m):
            ib[i] = i4[i]
    elif code == I64:
        i8 = carray(p, m, np.int64)
        for i in range(m):
            ib[i] = i8[i]
    else:  # uint8 and bool
        u1 = carray(p, m, np.uint8)
        for i in range(m):
            ib[i] = u1[i]


@numba.njit
def _widen(fb, ib, src_int, m):
    """Make fb hold the values as float64; integers go through float32 (torch's route to halves)."""
    if src_int:
        for i in range(m):
            fb[i] = np.float32(ib[i])


@numba.njit
def _encode_float(fb, ib, src_int, addr, code, m, nan_bf16):
    """Write m scratch values as float code `code` at addr, rounding to nearest even."""
    p = vptr(addr)
    if code == F64:
        f8 = carray(p, m, np.float64)
        if src_int:
            for i in range(m):
                f8[i] = np.float64(ib[i])
        else:
            for i in range(m):
                f8[i] = fb[i]
    elif code == F32:
        f4 = carray(p, m, np.float32)
        if src_int:
            for i in range(m):
                f4[i] = np.float32(ib[i])
        else:
            for i in range(m):
                f4[i] = np.float32(fb[i])
    else:
        _widen(fb, ib, src_int, m)
        h = carray(p, m, np.uint16)
        if code == F16:
            for i in range(m):
                h[i] = f32_to_half(np.float32(fb[i]))
        else:
            for i in range(m):
                h[i] = f32_to_bf16(np.float32(fb[i]), nan_bf16)


@numba.njit
def _to_int(x, wide):
    """Truncate toward zero like x86: NaN and out-of-range give INT64_MIN (wide) or INT32_MIN."""
    if wide:
        if x >= -9223372036854775808.0 and x < 9223372036854775808.0:
            return np.int64(x)
        return np.int64(-9223372036854775808)
    if x >= -2147483648.0 and x < 2147483648.0:
        return np.int64(x)
    return np.int64(-2147483648)


@numba.njit
def _encode_int(fb, ib, src_int, addr, code, m):
    """Write m scratch values as integer code `code` at addr (wrapping like C casts)."""
    p = vptr(addr)
    if code == BOOL:
        b1 = carray(p, m, np.uint8)
        if src_int:
            for i in range(m):
                b1[i] = ib[i] != 0
        else:
            for i in range(m):
                b1[i] = fb[i] != 0.0
        return
    if not src_int:
        wide = code in (I64, U8)
        for i in range(m):
            ib[i] = _to_int(fb[i], wide)
    if code == I64:
        i8 = carray(p, m, np.int64)
        for i in range(m):
            i8[i] = ib[i]
    elif code == I32:
        i4 = carray(p, m, np.int32)
        for i in range(m):
            i4[i] = ib[i]
    elif code == I16:
        i2 = carray(p, m, np.int16)
        for i in range(m):
            i2[i] = ib[i]
    elif code == I8:
        i1 = carray(p, m, np.int8)
        for i in range(m):
            i1[i] = ib[i]
    else:
        u1 = carray(p, m, np.uint8)
        for i in range(m):
            u1[i] = ib[i]


@numba.njit
def _direct(sa, sc, da, dc, m):
    """Convert m elements of a hot pair in one loop; return False for other pairs."""
    if sc == dc:
        size = ITEMSIZE[sc]
        carray(vptr(da), m * size, np.uint8)[:] = carray(vptr(sa), m * size, np.uint8)
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
        else:  # bit shift, so signalling NaNs stay signalling as in torch
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
        start = max(i0, n - n % (simd_bytes // 4))
        h = carray(vptr(sa), n, np.uint16)
        u4 = carray(vptr(da), n, np.uint32)
        for i in range(start, i1):
            if (h[i] & 0x7FFF) > 0x7C00:
                u4[i] = 0x7FFFFFFF
    elif sc == F64 and dc == BF16:
        start = max(i0, n - n % (simd_bytes // 2))
        f8 = carray(vptr(sa), n, np.float64)
        u2 = carray(vptr(da), n, np.uint16)
        for i in range(start, i1):
            if f8[i] != f8[i]:
                u2[i] = 0x7FC0


@numba.njit
def _convert_range(sa, sc, da, dc, i0, i1, n, simd_bytes, fb, ib):
    """Convert elements [i0, i1) of one (src, dst) pair of n elements."""
    ssize, dsize = ITEMSIZE[sc], ITEMSIZE[dc]
    if not _direct(sa + i0 * ssize, sc, da + i0 * dsize, dc, i1 - i0):
        src_int = not is_float(sc)
        nan_bf16 = 0x7FC0 if sc == F16 else 0xFFFF
        for c in range(i0, i1, CHUNK):
            m = min(CHUNK, i1 - c)
            _decode(sa + c * ssize, sc, m, fb, ib)
            if is_float(dc):
                _encode_float(fb, ib, src_int, da + c * dsize, dc, m, nan_bf16)
            else:
                _encode_int(fb, ib, src_int, da + c * dsize, dc, m)
    _scalar_tail(sa, sc, da, dc, i0, i1, n, simd_bytes)


def convert(saddr, scode, daddr, dcode, starts, simd_bytes, nblocks):
    """Pair p: copy starts[p+1]-starts[p] elements from saddr[p] to daddr[p], casting."""
    total = starts[-1]
    for b in prange(nblocks):
        lo, hi = block(total, nblocks, b)
        fb = np.empty(CHUNK, np.float64)
        ib = fb.view(np.int64)
        p = np.searchsorted(starts, lo, side="right") - 1
        while lo < hi:
            end = min(hi, starts[p + 1])
            if end > lo:
                n = starts[p + 1] - starts[p]
                i0, i1 = lo - starts[p], end - starts[p]
                _convert_range(saddr[p], scode[p], daddr[p], dcode[p], i0, i1, n, simd_bytes, fb, ib)
            lo = end
            p += 1


@numba.njit
def _combine_range(sa, sc, da, dc, i0, i1, alpha, fb, ib, gb, jb):
    """Add alpha * src to dst over [i0, i1): float64 math if either is float64, else float32."""
    src_int = not is_float(sc)
    a32 = np.float32(alpha)
    for c in range(i0, i1, CHUNK):
        m = min(CHUNK, i1 - c)
        _decode(da + c * ITEMSIZE[dc], dc, m, fb, ib)
        _decode(sa + c * ITEMSIZE[sc], sc, m, gb, jb)
        if sc == F64 or dc == F64:
            if src_int:
                for i in range(m):
                    fb[i] = fb[i] + alpha * np.float64(jb[i])
            else:
                for i in range(m):
                    fb[i] = fb[i] + alpha * gb[i]
        elif src_int:
            for i in range(m):
                fb[i] = np.float32(fb[i]) + a32 * np.float32(jb[i])
        else:
            for i in range(m):
                fb[i] = np.float32(fb[i]) + a32 * np.float32(gb[i])
        _encode_float(fb, ib, False, da + c * ITEMSIZE[dc], dc, m, 0xFFFF)


def combine(saddr, scode, daddr, dcode, starts, alpha, nblocks):
    """Pair p: dst[p] += alpha * src[p], rounded once into dst's (floating) dtype."""
    total = starts[-1]
    for b in prange(nblocks):
        lo, hi = block(total, nblocks, b)
        fb = np.empty(CHUNK, np.float64)
        gb = np.empty(CHUNK, np.float64)
        ib = fb.view(np.int64)
        jb = gb.view(np.int64)
        p = np.searchsorted(starts, lo, side="right") - 1
        while lo < hi:
            end = min(hi, starts[p + 1])
            if end > lo:
                i0, i1 = lo - starts[p], end - starts[p]
                _combine_range(saddr[p], scode[p], daddr[p], dcode[p], i0, i1, alpha, fb, ib, gb, jb)
            lo = end
            p += 1


CONVERT = compile_pair(convert)
COMBINE = compile_pair(combine)

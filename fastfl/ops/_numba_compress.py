"""numba kernels of the compression functions (fastfl.ops.compress), on numpy views of tensors.

Same arithmetic as `fastfl.ops._torch`'s reference, element for element: the QSGD draws come from
the same counter-based hash, levels and values are computed in float64, DGC's update rounds like
torch's separate multiply and add. Elementwise kernels take the range [lo, hi) they work on
(`_numba_jit.run` splits on multiples of 4096 elements, so a QSGD chunk starts on a byte).
"""

from __future__ import annotations

import numba
import numpy as np

from fastfl.ops._numba_jit import compile_kernel

_M32 = np.uint64(0xFFFFFFFF)


@numba.njit(inline="always")
def _mix32(h):
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85EBCA6B)) & _M32
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xC2B2AE35)) & _M32
    return h ^ (h >> np.uint64(16))


@numba.njit(inline="always")
def _uniform(i, k0, k1):
    u = np.uint64(i)
    h = _mix32(((u & _M32) * np.uint64(0x9E3779B9) + k0) & _M32)
    h = _mix32(h ^ k1 ^ ((u >> np.uint64(32)) & _M32))
    return np.float64(h >> np.uint64(8)) * (1.0 / 16777216.0)


def _sum_squares(x, out, lo, hi):
    acc = 0.0
    for i in range(lo, hi):
        v = np.float64(x[i])
        acc += v * v
    out[lo // 4096] = acc


def _qsgd_encode(x, scale, s, k0, k1, bits, out, lo, hi):
    top = np.float64(s)
    uk0, uk1 = np.uint64(k0), np.uint64(k1)
    p = lo // 8 * bits
    acc = np.uint64(0)
    filled = 0
    for i in range(lo, hi):
        r = abs(np.float64(x[i])) * scale
        level = np.floor(r)
        if _uniform(i, uk0, uk1) < r - level:
            level += 1.0
        level = min(level, top)
        code = (np.uint64(level) << np.uint64(1)) | np.uint64(1 if x[i] < 0 else 0)
        acc |= code << np.uint64(filled)
        filled += bits
        while filled >= 8:
            out[p] = np.uint8(acc & np.uint64(0xFF))
            p += 1
            acc >>= np.uint64(8)
            filled -= 8
    if filled > 0:
        out[p] = np.uint8(acc & np.uint64(0xFF))


def _qsgd_decode(codes, step, s, bits, out, bad, lo, hi):
    mask = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    us = np.uint64(s)
    p = lo // 8 * bits
    acc = np.uint64(0)
    filled = 0
    wrong = 0
    for i in range(lo, hi):
        while filled < bits:
            acc |= np.uint64(codes[p]) << np.uint64(filled)
            p += 1
            filled += 8
        code = acc & mask
        acc >>= np.uint64(bits)
        filled -= bits
        level = code >> np.uint64(1)
        if level > us:
            wrong += 1
            level = us
        signed = -np.int64(level) if code & np.uint64(1) else np.int64(level)
        out[i] = np.float64(signed) * step  # a zero level decodes as +0.0 whatever its sign bit
    bad[lo // 4096] = wrong


def _keys(x):
    if x.dtype == np.float64:
        return x.view(np.uint64) & np.uint64(0x7FFFFFFFFFFFFFFF), 47
    return x.view(np.uint32).astype(np.uint64) & np.uint64(0x7FFFFFFF), 15


def _topk_select(keys, shift, x, k, idx, vals):
    n = x.size
    hist = np.zeros(1 << 16, dtype=np.int64)
    sh = np.uint64(shift)
    for i in range(n):
        hist[keys[i] >> sh] += 1
    b = (1 << 16) - 1
    above = 0
    while above + hist[b] < k:
        above += hist[b]
        b -= 1
    cand = np.empty(hist[b], dtype=np.uint64)
    c = 0
    ub = np.uint64(b)
    for i in range(n):
        if keys[i] >> sh == ub:
            cand[c] = keys[i]
            c += 1
    r = k - above
    t = np.sort(cand)[cand.size - r]  # the r-th largest key of the bin
    ties = r
    for j in range(cand.size):
        if cand[j] > t:
            ties -= 1
    j = 0
    for i in range(n):
        if j == k:
            break
        key = keys[i]
        if key > t or (key == t and ties > 0):
            if key == t:
                ties -= 1
            idx[j] = i
            vals[j] = x[i]
            j += 1


def _gather(x, idx, vals):
    for j in range(idx.size):
        vals[j] = x[idx[j]]


def _scatter(out, idx, vals, zero):
    for j in range(idx.size):
        out[idx[j]] = 0 if zero else vals[j]


def _dgc(u, v, g, m, nesterov, lo, hi):
    # m arrives as a numpy scalar of u's dtype, so float32 buffers update in float32
    for i in range(lo, hi):
        if nesterov:
            ui = (u[i] + g[i]) * m
            u[i] = ui
            v[i] = (v[i] + ui) + g[i]
        else:
            ui = u[i] * m + g[i]
            u[i] = ui
            v[i] = v[i] + ui


sum_squares = compile_kernel(_sum_squares)
qsgd_encode = compile_kernel(_qsgd_encode)
qsgd_decode = compile_kernel(_qsgd_decode)
topk_select_keys = compile_kernel(_topk_select)
gather = compile_kernel(_gather)
scatter = compile_kernel(_scatter)
dgc = compile_kernel(_dgc)
keys = _keys

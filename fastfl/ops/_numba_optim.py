"""numba kernels of fastfl.ops.optim over float32 buffers given by address (see `_numba.py`).

Each kernel takes its element range [lo, hi) last, so `_numba_jit.run` can split it over
threads. An address of 0 stands for an absent optional buffer.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from fastfl.ops._numba_jit import compile_kernel, vptr

carray = numba.carray


@numba.njit
def _f32(addr, lo, hi):
    return carray(vptr(addr + lo * 4), hi - lo, np.float32)


def _local_step(w_addr, g_addr, a_addr, l_addr, lr, mu, lo, hi):
    w, g = _f32(w_addr, lo, hi), _f32(g_addr, lo, hi)
    lr32, mu32 = np.float32(lr), np.float32(mu)
    if a_addr != 0 and l_addr != 0:
        a, lin = _f32(a_addr, lo, hi), _f32(l_addr, lo, hi)
        for i in range(hi - lo):
            w[i] -= lr32 * (g[i] + mu32 * (w[i] - a[i]) + lin[i])
    elif a_addr != 0:
        a = _f32(a_addr, lo, hi)
        for i in range(hi - lo):
            w[i] -= lr32 * (g[i] + mu32 * (w[i] - a[i]))
    elif l_addr != 0:
        lin = _f32(l_addr, lo, hi)
        for i in range(hi - lo):
            w[i] -= lr32 * (g[i] + lin[i])
    else:
        for i in range(hi - lo):
            w[i] -= lr32 * g[i]


def _control_update(s_addr, x_addr, y_addr, sh_addr, d_addr, scale, lo, hi):
    s, x, y = _f32(s_addr, lo, hi), _f32(x_addr, lo, hi), _f32(y_addr, lo, hi)
    sc = np.float32(scale)
    has_shift, has_delta = sh_addr != 0, d_addr != 0
    sh = _f32(sh_addr if has_shift else s_addr, lo, hi)
    d = _f32(d_addr if has_delta else s_addr, lo, hi)
    for i in range(hi - lo):
        change = sc * (x[i] - y[i])
        if has_shift:
            change -= sh[i]
        updated = s[i] + change
        if has_delta:
            d[i] = updated - s[i]
        s[i] = updated


def _server_step(x_addr, d_addr, m_addr, v_addr, kind, lr, b1, b2, tau, lo, hi):
    x, d, m = _f32(x_addr, lo, hi), _f32(d_addr, lo, hi), _f32(m_addr, lo, hi)
    lr32, b1_32, b2_32, tau32 = np.float32(lr), np.float32(b1), np.float32(b2), np.float32(tau)
    one = np.float32(1.0)
    if kind == 0:
        for i in range(hi - lo):
            m[i] = b1_32 * m[i] + d[i]
            x[i] += lr32 * m[i]
        return
    v = _f32(v_addr, lo, hi)
    for i in range(hi - lo):
        d2 = d[i] * d[i]
        m[i] = b1_32 * m[i] + (one - b1_32) * d[i]
        if kind == 1:
            v[i] = b2_32 * v[i] + (one - b2_32) * d2
        elif kind == 2:
            diff = v[i] - d2
            sign = np.float32(1.0) if diff > 0 else (np.float32(-1.0) if diff < 0 else np.float32(0.0))
            v[i] -= (one - b2_32) * d2 * sign
        else:
            v[i] += d2
        x[i] += lr32 * m[i] / (np.float32(math.sqrt(v[i])) + tau32)


local_step = compile_kernel(_local_step)
control_update = compile_kernel(_control_update)
server_step = compile_kernel(_server_step)

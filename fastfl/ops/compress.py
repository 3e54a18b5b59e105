"""Compression kernels on the backend `fastfl.ops` chose.

QSGD quantize+pack and unpack+dequantize, top-k selection, sparse gather/scatter and DGC's
momentum correction.

Every function validates its arguments here, then calls the backend (CUDA tensors go to the
torch reference). Buffers are float32 or float64 (callers cast half types first); indices are
int64; packed codes are uint8. Outputs are allocated here unless passed in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastfl import ops
from fastfl.errors import KernelArgumentError, KernelTypeError
from fastfl.ops import _check

__all__ = [
    "MAX_LEVELS",
    "dgc_accumulate_",
    "gather",
    "qsgd_bits",
    "qsgd_dequantize",
    "qsgd_nbytes",
    "qsgd_quantize",
    "scatter_",
    "sum_squares",
    "topk",
]

BUFFER_DTYPES = (torch.float32, torch.float64)
MAX_LEVELS = (1 << 15) - 1  # codes stay within 16 bits: one sign bit and 15 level bits
_SEED_LIMIT = 1 << 64


def _buffer(x: object, name: str) -> Tensor:
    t = _check.tensor(x, name)
    _check.floating(t, name, BUFFER_DTYPES)
    return t


def _backend(**named: Tensor):
    return ops._pick(_check.device_of({k: [v] for k, v in named.items()}))


def _levels(s: object) -> int:
    if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= MAX_LEVELS:
        raise KernelArgumentError(f"s (QSGD levels) must be an integer in [1, {MAX_LEVELS}], got {s!r}")
    return s


def _norm(norm: object) -> float:
    value = float(norm)  # type: ignore[arg-type]
    if not (value >= 0.0 and value != float("inf")):
        raise KernelArgumentError(
            f"norm must be finite and >= 0 (a non-finite norm means x holds NaN/Inf), got {value}"
        )
    return value


def qsgd_bits(s: int) -> int:
    """Bits of one QSGD code for s levels: a sign bit plus the bit length of s."""
    return 1 + _levels(s).bit_length()


def qsgd_nbytes(count: int, s: int) -> int:
    """Bytes of `count` packed QSGD codes for s levels (the last byte zero-padded)."""
    return (count * qsgd_bits(s) + 7) // 8


def sum_squares(x: Tensor) -> float:
    """Return sum(x_i^2) accumulated in float64 (so ||x||_2 = sqrt of it)."""
    x = _buffer(x, "x")
    return _backend(x=x).sum_squares(x) if x.numel() else 0.0


def qsgd_quantize(x: Tensor, *, s: int, norm: float, seed: int, out: Tensor | None = None) -> Tensor:
    """Quantize x to s levels of norm/s with stochastic rounding and bit-pack the codes.

    level_i = floor(|x_i|*s/norm + [u_i < frac]) (clamped to s), u_i the uniform draw of element i
    under `seed`; code_i = level_i << 1 | sign_i, qsgd_bits(s) bits each, little-endian.

    Args:
        x: float32/float64 tensor.
        s: number of levels (1..MAX_LEVELS).
        norm: the scale, ||x||_2 for QSGD; 0 gives all-zero codes.
        seed: integer in [0, 2^64) selecting the draws (same seed, same codes, on every backend).
        out: uint8 buffer of qsgd_nbytes(x.numel(), s) bytes; allocated if None.
    """
    x = _buffer(x, "x")
    s, norm = _levels(s), _norm(norm)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < _SEED_LIMIT:
        raise KernelArgumentError(f"seed must be an integer in [0, 2^64), got {seed!r}")
    nbytes = qsgd_nbytes(x.numel(), s)
    out = _bytes_out(out, nbytes, x.device)
    if x.numel():
        scale = s / norm if norm > 0 else 0.0
        _backend(x=x, out=out).qsgd_encode(x, scale, s, seed & 0xFFFFFFFF, seed >> 32, out)
    return out


def qsgd_dequantize(codes: Tensor, *, s: int, norm: float, out: Tensor) -> Tensor:
    """Unpack QSGD codes into out: sign * level * norm / s, rounded to out's dtype.

    Raises:
        KernelArgumentError: codes has the wrong size, or holds a level above s (corrupt data).
    """
    out = _buffer(out, "out")
    s, norm = _levels(s), _norm(norm)
    _check.tensor(codes, "codes")
    nbytes = qsgd_nbytes(out.numel(), s)
    if codes.dtype != torch.uint8 or codes.dim() != 1 or codes.numel() != nbytes:
        raise KernelArgumentError(
            f"codes must be 1-D uint8 with {nbytes} bytes for {out.numel()} codes of s={s}, "
            f"got {codes.dtype} of shape {tuple(codes.shape)}"
        )
    if out.numel():
        bad = _backend(codes=codes, out=out).qsgd_decode(codes, norm / s, s, out)
        if bad:
            raise KernelArgumentError(f"codes hold {bad} levels above s={s}; the data is corrupt")
    return out


def topk(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Return (indices, values) of the k largest |x_i|.

    Indices come ascending (int64), ties go to the lower index, NaN ranks above every number;
    k >= x.numel() keeps everything.
    """
    x = _buffer(x, "x")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise KernelArgumentError(f"k must be an integer >= 0, got {k!r}")
    k = min(k, x.numel())
    idx = torch.empty(k, dtype=torch.int64, device=x.device)
    vals = torch.empty(k, dtype=x.dtype, device=x.device)
    if k:
        _backend(x=x).topk_select(x, k, idx, vals)
    return idx, vals


def gather(x: Tensor, idx: Tensor, *, out: Tensor | None = None) -> Tensor:
    """Return x.view(-1)[idx] (idx int64, every entry checked to lie in [0, x.numel()))."""
    x = _buffer(x, "x")
    _indices(idx, x.numel())
    if out is None:
        out = torch.empty(idx.numel(), dtype=x.dtype, device=x.device)
    out = _buffer(out, "out")
    if out.dtype != x.dtype or out.numel() != idx.numel():
        raise KernelArgumentError(f"out must be {x.dtype} with {idx.numel()} elements")
    _backend(x=x, idx=idx, out=out).gather(x, idx, out)
    return out


def scatter_(out: Tensor, idx: Tensor, vals: Tensor | None = None) -> Tensor:
    """Set out.view(-1)[idx] = vals (or 0 where vals is None) in place; return out.

    Repeated indices keep the last value. Every index is checked to lie in range first.
    """
    out = _buffer(out, "out")
    _indices(idx, out.numel())
    if vals is not None:
        vals = _buffer(vals, "vals")
        if vals.dtype != out.dtype or vals.numel() != idx.numel():
            raise KernelArgumentError(
                f"vals must be {out.dtype} with {idx.numel()} elements, got {vals.dtype} with {vals.numel()}"
            )
    named = {"out": out, "idx": idx} | ({} if vals is None else {"vals": vals})
    _backend(**named).scatter_(out, idx, vals)
    return out


def dgc_accumulate_(u: Tensor, v: Tensor, g: Tensor, momentum: float, *, nesterov: bool = False) -> None:
    """DGC's momentum correction in place: u = m*u + g; v += u (nesterov: u = (u+g)*m; v += u + g)."""
    for name, t in (("u", u), ("v", v), ("g", g)):
        _buffer(t, name)
        if t.dtype != g.dtype or t.numel() != g.numel():
            raise KernelArgumentError(f"{name} must match g ({g.dtype}, {g.numel()} elements)")
    (m,) = _check.weight_list([momentum], 1, "momentum")
    if g.numel():
        _backend(u=u, v=v, g=g).dgc_accumulate_(u, v, g, m, bool(nesterov))


def _indices(idx: object, n: int) -> None:
    t = _check.tensor(idx, "idx")
    if t.dtype != torch.int64 or t.dim() != 1:
        raise KernelTypeError(f"idx must be a 1-D int64 tensor, got {t.dtype} of shape {tuple(t.shape)}")
    if not t.numel():
        return
    # numpy's single-threaded min/max: torch's threaded reductions stall on a loaded machine
    a = t.numpy() if t.device.type == "cpu" else t
    low, high = int(a.min()), int(a.max())
    if low < 0 or high >= n:
        raise KernelArgumentError(f"idx holds indices outside [0, {n}): min {low}, max {high}")


def _bytes_out(out: Tensor | None, nbytes: int, device: torch.device) -> Tensor:
    if out is None:
        return torch.empty(nbytes, dtype=torch.uint8, device=device)
    _check.tensor(out, "out")
    if out.dtype != torch.uint8 or out.dim() != 1 or out.numel() != nbytes:
        raise KernelArgumentError(
            f"out must be 1-D uint8 with {nbytes} bytes, got {out.dtype} {tuple(out.shape)}"
        )
    return out

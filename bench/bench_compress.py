"""Compression codecs: encode and decode throughput against a copy and against FedLab-style torch.

For each codec (QSGD s=127, top-k 1% with error feedback, random-k 1% with error feedback, DGC
0.1% after warm-up, fp16 cast) and each model-sized flat update (`cnn` 1.15 M and `resnet18`
11.7 M fp32 values), one pytest-benchmark group per direction holds:

| impl | what |
|---|---|
| `fastfl-native`, `fastfl-numba`, `fastfl-torch` | `fastfl.contrib.compressor` on that kernel backend |
| `fedlab` | the plain-torch algorithm of FedLab 1.3 / FedLab-benchmarks, rewritten from its description: QSGD with max-norm, `torch.rand` Bernoulli and int32 levels + bool signs; `torch.topk` + `index_put_`; `randperm` + gather; DGC with `mul_/add_` momentum and `torch.topk`; `x.to(float16)` |
| `copy` | `dst.copy_(src)` of the same fp32 update: the memory-bandwidth yardstick |

`extra_info["bytes"]` is the dense fp32 update's size (4 N) for every impl, so GB/s reads as
"update bytes encoded (or decoded) per second" and the ratios compare like with like.
`python bench/bench_compress.py results.json` prints the table (bench_kernels.report).
"""

from __future__ import annotations

import functools
import sys

import pytest
import torch
from conftest import client_updates

from fastfl import ops
from fastfl.contrib.compressor import (
    CastCompressor,
    DGCCompressor,
    QSGDCompressor,
    RandomKCompressor,
    TopkCompressor,
)

SETS = ["cnn", "resnet18"]
CODECS = ["qsgd", "topk", "randk", "dgc", "fp16"]
IMPLS = [f"fastfl-{b}" for b in ops.available_backends()] + ["fedlab", "copy"]
RATIO = 0.01


def _make(codec: str):
    return {
        "qsgd": lambda: QSGDCompressor(s=127),
        "topk": lambda: TopkCompressor(RATIO),
        "randk": lambda: RandomKCompressor(RATIO),
        "dgc": lambda: DGCCompressor(0.001, warmup_epochs=0),
        "fp16": lambda: CastCompressor(torch.float16),
    }[codec]()


@functools.cache
def _update(name: str) -> torch.Tensor:
    return client_updates(name, 1)[0].clone()


# ---- FedLab-style plain torch (FedLab 1.3 contrib / FedLab-benchmarks), from algorithms.md 1.3 ----


def _fedlab_qsgd_encode(x, n_bit=7):
    s = 2**n_bit
    norm = x.abs().max()
    level = x.abs() / norm * s
    floor = level.floor()
    level = floor + (torch.rand(x.shape) < (level - floor)).float()
    return x < 0, level.clamp(max=s).to(torch.int32), norm, s


def _fedlab_qsgd_decode(signs, levels, norm, s):
    return torch.where(signs, -1.0, 1.0) * levels.float() * norm / s


def _fedlab_topk_encode(x, ratio=RATIO):
    k = max(1, int(x.numel() * ratio + 0.999999))
    _, idx = torch.topk(x.abs(), k, sorted=False)
    return x[idx], idx


def _fedlab_sparse_decode(vals, idx, n):
    return torch.zeros(n).index_put_((idx,), vals, accumulate=True)


def _fedlab_randk_encode(x, ratio=RATIO):
    k = max(1, int(x.numel() * ratio + 0.999999))
    idx = torch.randperm(x.numel())[:k]
    return x[idx], idx


class _FedlabDGC:
    def __init__(self, n, ratio=0.001, momentum=0.9):
        self.u, self.v, self.ratio, self.m = torch.zeros(n), torch.zeros(n), ratio, momentum

    def encode(self, g):
        self.u.mul_(self.m).add_(g)
        self.v.add_(self.u)
        k = max(1, int(g.numel() * self.ratio + 0.999999))
        _, idx = torch.topk(self.v.abs(), k, sorted=False)
        vals = self.v[idx]
        self.u.index_fill_(0, idx, 0)
        self.v.index_fill_(0, idx, 0)
        return vals, idx


def _fedlab_fns(codec, x):
    n = x.numel()
    if codec == "qsgd":
        return functools.partial(_fedlab_qsgd_encode, x), lambda enc: _fedlab_qsgd_decode(*enc)
    if codec == "fp16":
        return functools.partial(x.to, torch.float16), lambda enc: enc.float()
    if codec == "dgc":
        return functools.partial(_FedlabDGC(n).encode, x), lambda enc: _fedlab_sparse_decode(*enc, n)
    encode = _fedlab_topk_encode if codec == "topk" else _fedlab_randk_encode
    return functools.partial(encode, x), lambda enc: _fedlab_sparse_decode(*enc, n)


def _with_backend(name, fn, *args):
    with ops.using(name):
        return fn(*args)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("direction", ["encode", "decode"])
@pytest.mark.parametrize("impl", IMPLS)
def bench_codec(measure, impl, direction, codec, name):
    x = _update(name)
    n = x.numel()
    group = f"{codec} {direction} {name}"
    if impl == "copy":
        dst = torch.empty_like(x)
        measure(group, lambda: dst.copy_(x), lambda r: None, x.nbytes)
        return
    if impl == "fedlab":
        encode, decode = _fedlab_fns(codec, x)
        fn = encode if direction == "encode" else functools.partial(decode, encode())
        measure(group, fn, lambda r: None, x.nbytes)
        return
    backend = impl.removeprefix("fastfl-")
    comp = _make(codec)
    blob = _with_backend(backend, comp.encode, x)
    if direction == "encode":
        fn = functools.partial(_with_backend, backend, comp.encode, x)
    else:
        fn = functools.partial(_with_backend, backend, comp.decode, blob, (n,), torch.float32)

    def check(result):
        if direction == "encode":
            assert result.numel() * 3 < x.nbytes  # at least 3x smaller than fp32 on the wire
        else:
            assert result.shape == x.shape and bool(result.isfinite().all())

    measure(group, fn, check, x.nbytes, wire_bytes=int(blob.numel() * blob.element_size()))


if __name__ == "__main__":
    from bench_kernels import report

    report(sys.argv[1])

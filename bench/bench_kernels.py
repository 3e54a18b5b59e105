"""Kernel benchmarks: FedAvg (weighted sum of K updates), FedAsync mixing, and fp32 -> fp16/bf16 casts.

Each group times fastfl (every backend), FedLab 1.2.1's algorithm, the plain-torch idioms, and a
plain copy and read of the same bytes, side by side. `python bench/bench_kernels.py results.json`
prints the ratios of a --benchmark-json run (see bench/README.md).
"""

from __future__ import annotations

import functools
import json
import sys

import baselines
import pytest
import torch
from conftest import client_updates, fastfl_backends, tensor_set

from fastfl import ops
from fastfl.utils import Aggregators

BACKENDS = fastfl_backends()
FEDAVG_CASES = [("mlp", 10), ("mlp", 100), ("cnn", 10), ("cnn", 100), ("resnet18", 10)]
FEDAVG_CASES += [pytest.param("resnet18", 100, marks=pytest.mark.slow)]  # 4.7 GB of inputs
FEDAVG_IMPLS = [f"fastfl-{b}" for b in BACKENDS] + [
    "fastfl-api",
    "fastfl-api-fresh",
    "fastfl-accumulate",
    "fedlab",
]
FEDAVG_IMPLS += ["torch-add-loop", "torch-blocked-add", "torch-stack-matmul", "torch-matmul-prestacked"]
YARDSTICKS = ["copy", "read"]
BLOCK = 1 << 17  # elements per chunk of the blocked add_ loop: the output chunk stays in L2


@functools.cache
def _weights(k: int) -> list[float]:
    raw = torch.rand(k, generator=torch.Generator().manual_seed(k), dtype=torch.float64) + 0.5
    return (raw / raw.sum()).tolist()


@functools.cache
def _fedavg_reference(name: str, k: int) -> torch.Tensor:
    """The exact weighted sum, rounded once to fp32."""
    ref = torch.zeros(tensor_set(name).numel, dtype=torch.float64)
    for row, w in zip(client_updates(name, k), _weights(k), strict=True):
        ref.add_(row.double(), alpha=w)
    return ref.float()


def _fedavg_fn(impl: str, rows: torch.Tensor, ws: list[float], out: torch.Tensor):
    xs = list(rows)
    if impl.startswith("fastfl-") and impl[7:] in BACKENDS:
        return lambda: _with_backend(impl[7:], ops.weighted_sum, xs, ws, out=out)
    if impl == "fastfl-api":
        return lambda: Aggregators.fedavg_aggregate(xs, ws, out=out)
    if impl == "fastfl-api-fresh":  # FedLab's call: a new result tensor every time
        return lambda: Aggregators.fedavg_aggregate(xs, ws)
    if impl == "fastfl-accumulate":

        def streamed():
            out.zero_()
            for x, w in zip(xs, ws, strict=True):
                ops.accumulate_(out, x, w)
            return out

        return streamed
    if impl == "fedlab":
        return lambda: baselines.fedavg_aggregate(xs, ws)
    if impl == "torch-add-loop":

        def add_loop():
            out.zero_()
            for x, w in zip(xs, ws, strict=True):
                out.add_(x, alpha=w)
            return out

        return add_loop
    if impl == "torch-blocked-add":

        def blocked():
            for start in range(0, out.numel(), BLOCK):
                chunk = out[start : start + BLOCK].zero_()
                for x, w in zip(xs, ws, strict=True):
                    chunk.add_(x[start : start + BLOCK], alpha=w)
            return out

        return blocked
    w = torch.tensor(ws, dtype=torch.float32)
    if impl == "torch-stack-matmul":
        return lambda: torch.matmul(w, torch.stack(xs))
    if impl == "torch-matmul-prestacked":
        return lambda: torch.mv(rows.t(), w, out=out)
    raise ValueError(impl)


def _with_backend(name, fn, *args, **kwargs):
    with ops.using(name):
        return fn(*args, **kwargs)


@pytest.mark.parametrize(("name", "k"), FEDAVG_CASES)
@pytest.mark.parametrize("impl", FEDAVG_IMPLS + YARDSTICKS)
def bench_fedavg(measure, impl, name, k):
    rows = client_updates(name, k)
    n = rows.shape[1]
    group = f"fedavg {name} K={k}"
    if impl in YARDSTICKS:
        _yardstick(measure, group, impl, rows)
        return
    if impl == "fedlab" and k * n > 200_000_000:
        pytest.skip("FedLab's two K x N temporaries need more than 9 GB here")
    out = torch.empty(n)
    ref = _fedavg_reference(name, k)

    def check(result):
        assert result.shape == ref.shape
        assert (result - ref).abs().max().item() <= 1e-6  # |values| < 0.1: a few fp32 ulps

    fn = _fedavg_fn(impl, rows, _weights(k), out)
    measure(group, fn, check, (k + 1) * n * 4, k=k, n=n)


def _yardstick(measure, group: str, impl: str, src: torch.Tensor) -> None:
    """A plain copy (2 x bytes moved) or read (sum) of the bytes in `src`, for bandwidth."""
    if impl == "copy":
        if src.numel() > 200_000_000:
            pytest.skip("a second 4.7 GB buffer does not fit beside the inputs")
        dst = torch.empty_like(src)
        measure(group, lambda: dst.copy_(src), lambda r: _same(r, src), 2 * src.nbytes)
    else:
        expected = src.double().sum().item() if src.numel() < 50_000_000 else None
        measure(group, src.sum, lambda r: _sum_ok(r, expected, src.numel()), src.nbytes)


def _same(result, src):
    assert torch.equal(result, src)


def _sum_ok(result, expected, count):
    if expected is None:
        assert torch.isfinite(result)
    else:
        assert abs(result.item() - expected) <= 1e-5 * count**0.5 + 1e-3


MIX_IMPLS = [f"fastfl-{b}" for b in BACKENDS] + ["fastfl-api", "fedlab", "torch-lerp_"]
ALPHA = 0.3


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet18"])
@pytest.mark.parametrize("impl", MIX_IMPLS + YARDSTICKS)
def bench_mix(measure, impl, name):
    pair = client_updates(name, 2)
    s0, n = pair[0], pair[1]
    group = f"mix {name}"
    if impl in YARDSTICKS:
        _yardstick(measure, group, impl, s0)
        return
    s = s0.clone()
    if impl.startswith("fastfl-") and impl[7:] in BACKENDS:
        fn = functools.partial(_with_backend, impl[7:], ops.mix_, s, n, ALPHA)
    elif impl == "fastfl-api":
        fn = functools.partial(Aggregators.fedasync_aggregate_, s, n, ALPHA)
    elif impl == "fedlab":
        fn = functools.partial(baselines.fedasync_aggregate, s, n, ALPHA)
    else:
        fn = functools.partial(s.lerp_, n, ALPHA)

    def check(_):
        s.copy_(s0)
        result = fn()
        torch.testing.assert_close(result, (1 - ALPHA) * s0 + ALPHA * n, rtol=1e-5, atol=1e-6)

    measure(group, fn, check, 3 * s0.nbytes, n=s0.numel())


CAST_IMPLS = [f"fastfl-{b}" for b in BACKENDS] + ["torch-copy_", "torch-to"]


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet18"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("impl", CAST_IMPLS + YARDSTICKS)
def bench_cast(measure, impl, dtype, name):
    x = client_updates(name, 1)[0]
    group = f"cast {name} fp32->{str(dtype)[6:]}"
    if impl in YARDSTICKS:
        _yardstick(measure, group, impl, x)
        return
    out = torch.empty(x.numel(), dtype=dtype)
    if impl.startswith("fastfl-"):
        fn = functools.partial(_with_backend, impl[7:], ops.cast, x, dtype, out=out)
    elif impl == "torch-copy_":
        fn = functools.partial(out.copy_, x)
    else:
        fn = functools.partial(x.to, dtype)
    expected = x.to(dtype)  # fp32 -> half in torch rounds once, to nearest even

    def check(result):
        assert torch.equal(result.view(torch.int16), expected.view(torch.int16))

    measure(group, fn, check, x.numel() * (4 + out.element_size()), n=x.numel())


def report(path: str) -> None:
    """Print, per group, each implementation's median time, GB/s and ratios to fastfl."""
    with open(path) as f:
        runs = json.load(f)["benchmarks"]
    groups: dict[str, dict[str, dict]] = {}
    for b in runs:
        impl = b["params"]["impl"]
        groups.setdefault(b["group"], {})[impl] = b
    for group, impls in sorted(groups.items()):
        base = next((impls[k] for k in impls if k == "fastfl-native"), None) or next(iter(impls.values()))
        print(f"\n## {group}  (ratios: time / time of {base['params']['impl']})")
        for impl, b in sorted(impls.items(), key=lambda kv: kv[1]["stats"]["median"]):
            med, best = b["stats"]["median"], b["stats"]["min"]
            gbs = b["extra_info"]["bytes"] / med / 1e9
            ratio = med / base["stats"]["median"]
            print(
                f"{impl:26s} median {med * 1e3:9.3f} ms  best {best * 1e3:9.3f} ms  {gbs:6.1f} GB/s  x{ratio:6.2f}"
            )


if __name__ == "__main__":
    report(sys.argv[1])


def bench_baselines_match_fedlab():
    """The reimplemented baselines give the real FedLab 1.2.1's results (skipped without fedlab)."""
    same = baselines.matches_fedlab()
    if same is None:
        pytest.skip("fedlab is not installed")
    assert same

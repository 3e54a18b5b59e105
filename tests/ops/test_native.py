"""The native backend's own contract: stub and dtype-table parity, the ABI check, threads.

Kernel results on every backend are tested in test_kernels_*.py; here are the things only the
compiled module has: names, codes, version, thread splitting, concurrent calls, every vector
level (scalar, AVX2, AVX-512) bitwise against torch, and the defensive checks in csrc/bindings.cpp.
"""

from __future__ import annotations

import ast
import importlib
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import fastfl
from fastfl import ops
from fastfl.dtypes import CODES, DType
from fastfl.errors import KernelArgumentError

_native = pytest.importorskip("fastfl.ops._native", reason="the native extension is not built")
_C = _native._C
STUB = Path(fastfl.__file__).parent / "_C.pyi"
F32, F16, BF16, F64 = torch.float32, torch.float16, torch.bfloat16, torch.float64


def _stub_names() -> set[str]:
    tree = ast.parse(STUB.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _same_bits(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal bit for bit, except that any NaN matches any NaN."""
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = want.isnan() if want.is_floating_point() else torch.zeros_like(want, dtype=torch.bool)
    assert torch.equal(got.isnan() if got.is_floating_point() else nan, nan)
    assert torch.equal(got[~nan].view(torch.uint8), want[~nan].view(torch.uint8))


@pytest.fixture
def reload_native(monkeypatch):
    """Reload fastfl.ops._native inside the test; put the real module back afterwards."""
    yield lambda: importlib.reload(_native)
    monkeypatch.undo()
    importlib.reload(_native)


def test_c_names_match_stub():
    public = {name for name in dir(_C) if not name.startswith("_")}
    assert public == _stub_names()


def test_backend_module_has_the_reference_functions():
    torch_backend = importlib.import_module("fastfl.ops._torch")
    kernels = {"cast", "combine", "weighted_sum", "accumulate_", "mix_"}
    for name in kernels:
        assert callable(getattr(_native, name)), name
        assert callable(getattr(torch_backend, name)), name
    assert _native.NAME == "native"


def test_dtype_codes_match_python_table():
    assert _C.dtype_codes() == {d.name: d.value for d in DType}


def test_stale_abi_is_an_import_error(monkeypatch, reload_native):
    monkeypatch.setattr(_C, "ABI_VERSION", _native.ABI_VERSION + 1)
    with pytest.raises(ImportError, match=r"stale build .*make setup"):
        reload_native()


def test_missing_extension_is_an_import_error(monkeypatch, reload_native):
    monkeypatch.delattr(fastfl, "_C")
    monkeypatch.setitem(sys.modules, "fastfl._C", None)
    with pytest.raises(ImportError, match=r"not built .*make setup"):
        reload_native()


@pytest.mark.parametrize("value", ["0", "-2", "two", ""])
def test_bad_thread_count_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("FASTFL_NUM_THREADS", value)
    with pytest.raises(KernelArgumentError, match="FASTFL_NUM_THREADS"):
        _native.threads()


def test_thread_count_follows_env_then_torch(monkeypatch):
    monkeypatch.delenv("FASTFL_NUM_THREADS", raising=False)
    assert _native.threads() == torch.get_num_threads()
    monkeypatch.setenv("FASTFL_NUM_THREADS", "3")
    assert _native.threads() == 3


def _mixed_tensors(total: int) -> list[torch.Tensor]:
    """Odd-sized tensors of all float dtypes, so thread chunks start inside tensors."""
    sizes = [total // 2 + 1, 7, total // 3 + 5, 1, total - total // 2 - total // 3 - 14]
    dtypes = [F32, F16, BF16, F64, F32]
    return [torch.randn(n, dtype=F64).mul_(100).to(d) for n, d in zip(sizes, dtypes, strict=True)]


def _run_all_kernels(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    flat = ops.flatten(tensors, dtype=F32)
    half = ops.flatten(tensors, dtype=BF16)
    dsts = [torch.ones_like(t) for t in tensors]
    ops.unflatten_(flat, dsts, mode="sub")
    xs = [flat, half, flat.to(F16)]
    avg = ops.weighted_sum(xs, [0.5, 0.25, 0.25])
    avg64 = ops.weighted_sum(xs, [0.5, 0.25, 0.25], acc_dtype=F64)
    acc = ops.accumulate_(flat.clone(), half, 0.3)
    mixed = ops.mix_(half.clone(), flat, 0.7)
    return [flat, half, *dsts, avg, avg64, acc, mixed]


@pytest.mark.parametrize("total", [700_001, pytest.param(12_000_001, marks=pytest.mark.slow)])
def test_threads_split_large_buffers_without_changing_results(monkeypatch, total):
    tensors = _mixed_tensors(total)
    results = {}
    for count in ("1", "2", "5"):
        monkeypatch.setenv("FASTFL_NUM_THREADS", count)
        results[count] = _run_all_kernels(tensors)
    for got in (results["2"], results["5"]):
        for g, w in zip(got, results["1"], strict=True):
            _same_bits(g, w)
    with ops.using("torch"):
        reference = _run_all_kernels(tensors)
    for i, (g, w) in enumerate(zip(results["2"], reference, strict=True)):
        if i < 2 + len(tensors):  # copies, casts and unflatten-sub: exact
            _same_bits(g, w)
        else:  # sums: torch may fuse multiply-add; the core rounds each step
            torch.testing.assert_close(g, w, rtol=2 * torch.finfo(g.dtype).eps, atol=1e-6)


def test_concurrent_calls_from_python_threads(monkeypatch):
    monkeypatch.setenv("FASTFL_NUM_THREADS", "2")
    jobs = [_mixed_tensors(600_000 + 1000 * i) for i in range(3)]
    expected = [_run_all_kernels(t) for t in jobs]

    def run(i: int) -> list[torch.Tensor]:
        _run_all_kernels(jobs[i])
        return _run_all_kernels(jobs[i])

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(run, range(3)))
    for got, want in zip(outcomes, expected, strict=True):
        for g, w in zip(got, want, strict=True):
            _same_bits(g, w)


LEVELS = _native.ISA_LEVELS
# The levels this CPU can run: each vector path is tested here by capping the level below it.
RUNNABLE = LEVELS[: LEVELS.index(_C.isa_available()) + 1]


@pytest.fixture(params=RUNNABLE)
def isa_level(request):
    """Run the test with the kernels capped at each instruction-set level this CPU has."""
    previous = _native.set_isa(request.param)
    assert _native.isa() == request.param
    with ops.using("native"):  # also when FASTFL_BACKEND picks another backend for the run
        yield request.param
    _native.set_isa(previous)


@pytest.mark.parametrize("half", [F16, BF16])
def test_half_conversions_match_torch_at_every_level(isa_level, half):
    every_half = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(half)
    _same_bits(ops.cast(every_half, F32), every_half.float())
    high = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int64) << 16
    low = torch.tensor([0, 1, 0xFFF, 0x1000, 0x1001, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001, 0xFFFF])
    floats = (high[:, None] | low[None, :]).reshape(-1).to(torch.int32).view(F32)
    got = ops.cast(floats, half)
    assert torch.equal(got.view(torch.int16), floats.to(half).view(torch.int16))  # NaN bits too


def test_float64_conversions_match_torch_at_every_level(isa_level):
    x = torch.randn(100_003, dtype=F64) * torch.logspace(-40, 40, 100_003, dtype=F64)
    _same_bits(ops.cast(x, F32), x.to(F32))
    _same_bits(ops.cast(x.to(F32), F64), x.to(F32).to(F64))


def _sum_in_order(xs: list[torch.Tensor], ws: list[float]) -> torch.Tensor:
    """sum_k w_k * x_k in float32, multiply and add rounded separately, left to right."""
    acc = torch.zeros_like(xs[0])
    for x, w in zip(xs, ws, strict=True):
        acc = acc + x * torch.tensor(w, dtype=F32)
    return acc


@pytest.mark.parametrize(
    ("k", "n"), [(1, 37), (3, 8191), (10, 100_003), (16, 20_001), (17, 9_000), (40, 2_055)]
)
def test_weighted_sum_is_bitwise_the_same_at_every_level(isa_level, k, n):
    xs = [torch.randn(n) for _ in range(k)]
    ws = [float(w) for w in torch.rand(k, dtype=F64)]
    want = _sum_in_order(xs, ws)
    _same_bits(ops.weighted_sum(xs, ws), want)
    out64 = torch.empty(n, dtype=F64)
    _same_bits(ops.weighted_sum(xs, ws, out=out64), want.to(F64))  # fp32 sum, stored as fp64


def _in_place_kernels(dtype: torch.dtype) -> list[torch.Tensor]:
    """accumulate_, mix_ and unflatten_ (add, sub) on fixed data; returns their results."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(300_007, generator=gen, dtype=dtype)
    acc, s = (
        torch.randn(300_007, generator=gen, dtype=dtype),
        torch.randn(300_007, generator=gen, dtype=dtype),
    )
    parts = [torch.randn(n, generator=gen, dtype=dtype) for n in (7, 150_000, 150_000)]
    ops.accumulate_(acc, x, 0.37)
    ops.mix_(s, x, 0.3)
    ops.unflatten_(x, parts, mode="add")
    ops.unflatten_(x.flip(0).contiguous(), parts, mode="sub")
    return [acc, s, *parts]


@pytest.mark.parametrize("dtype", [F32, F64])
def test_in_place_kernels_are_bitwise_the_same_at_every_level(isa_level, dtype):
    got = _in_place_kernels(dtype)
    previous = _native.set_isa("scalar")
    try:
        want = _in_place_kernels(dtype)
    finally:
        _native.set_isa(previous)
    for g, w in zip(got, want, strict=True):
        _same_bits(g, w)
    with ops.using("torch"):
        reference = _in_place_kernels(dtype)
    for g, r in zip(got, reference, strict=True):
        torch.testing.assert_close(g, r)


def test_weighted_sum_streams_a_large_output_exactly(isa_level, monkeypatch):
    monkeypatch.setenv("FASTFL_NUM_THREADS", "2")
    xs = [torch.randn(4_200_001) for _ in range(3)]  # > 16 MB out: non-temporal stores
    ws = [0.25, 0.5, 0.25]
    out = torch.empty(4_200_002)[1:]  # misaligned by 4 bytes: the aligned head is peeled
    _same_bits(ops.weighted_sum(xs, ws, out=out), _sum_in_order(xs, ws))


def test_copies_past_the_streaming_threshold_are_exact(isa_level):
    # >= 16 MB written switches equal-dtype pieces to streaming stores; odd sizes misalign them.
    tensors = [torch.randn(n) for n in (3, 2_100_001, 17, 2_100_000, 5)]
    tensors.insert(2, torch.randn(9, dtype=F64))
    flat = ops.flatten(tensors, dtype=F32)
    back = [torch.empty_like(t) for t in tensors]
    ops.unflatten_(flat, back)
    _same_bits(flat, torch.cat([t.to(F32) for t in tensors]))
    for got, want in zip(back, tensors, strict=True):
        _same_bits(got, want.to(F32).to(want.dtype))


def test_isa_cap_reports_previous_cap_and_rejects_unknown_levels():
    first = _native.set_isa("scalar")
    try:
        assert _native.isa() == "scalar"
        assert _native.set_isa("scalar") == "scalar"
        with pytest.raises(ValueError, match="avx9"):
            _native.set_isa("avx9")
    finally:
        _native.set_isa(first)
    assert _native.isa() == _C.isa_available()


@pytest.mark.parametrize("level", LEVELS)
def test_fastfl_isa_env_caps_the_level(monkeypatch, reload_native, level):
    monkeypatch.setenv("FASTFL_ISA", level)
    module = reload_native()
    want = LEVELS[min(LEVELS.index(level), LEVELS.index(_C.isa_available()))]
    assert module.isa() == want


def test_bad_fastfl_isa_names_the_variable(monkeypatch, reload_native):
    monkeypatch.setenv("FASTFL_ISA", "sse9")
    with pytest.raises(KernelArgumentError, match="FASTFL_ISA"):
        reload_native()


def test_bindings_reject_what_ops_would_have_caught():
    src, dst = torch.zeros(8), torch.zeros(8)
    code = CODES[F32]
    with pytest.raises(ValueError, match="contiguous"):
        _C.cast([torch.zeros(4, 4).t()], [code], [torch.zeros(16)], [code], 1)
    with pytest.raises(ValueError, match="dtype code"):
        _C.cast([src], [CODES[F64]], [dst], [code], 1)
    with pytest.raises(ValueError, match="unknown dtype code"):
        _C.cast([src], [42], [dst], [code], 1)
    with pytest.raises(ValueError, match="elements"):
        _C.cast([src], [code], [torch.zeros(9)], [code], 1)
    with pytest.raises(ValueError, match="one dtype code per tensor"):
        _C.cast([src, src], [code], [dst, dst], [code, code], 1)
    with pytest.raises(ValueError, match="float32 or float64"):
        _C.weighted_sum([src], [code], [1.0], torch.zeros(8, dtype=F16), CODES[F16], False, 1)
    with pytest.raises(ValueError, match="floating"):
        _C.combine([src], [code], [torch.zeros(8, dtype=torch.int32)], [CODES[torch.int32]], 1.0, 1)

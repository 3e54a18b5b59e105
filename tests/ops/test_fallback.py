"""Backend selection and fallback (decided at import, so tested in subprocesses), and numba's own paths.

Each child imports fastfl.ops under a given environment. The extension is hidden from a child by
`sys.modules["fastfl._C"] = None` before the import, and numba likewise, so the tests hold
whether or not fastfl._C is built; the few that need the built extension skip without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
HIDE_C = 'sys.modules["fastfl._C"] = None'
HIDE_NUMBA = 'sys.modules["numba"] = None'
CHILD_TIMEOUT = 240  # seconds; a cold numba compile on a loaded 2-core machine takes a while


def _native_builds() -> bool:
    try:
        import fastfl.ops._native  # noqa: F401
    except ImportError:
        return False
    return True


needs_native = pytest.mark.skipif(not _native_builds(), reason="fastfl._C is not built here")


def _child(env: dict[str, str], *hide: str, body: str = "") -> subprocess.CompletedProcess[str]:
    """Import fastfl.ops in a fresh interpreter; report the backend and the warnings it logged."""
    code = textwrap.dedent(
        f"""
        import json, logging, sys
        {"; ".join(hide) or "pass"}
        seen = []
        class Collect(logging.Handler):
            def emit(self, record):
                if record.levelno >= logging.WARNING:
                    seen.append(record.getMessage())
        logging.getLogger("fastfl").addHandler(Collect())
        import fastfl.ops as ops
        import fastfl.ops
        ops.available_backends()
        {body}
        print(json.dumps({{"backend": ops.backend(), "warnings": seen}}))
        """
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FASTFL_")}
    clean["PYTHONPATH"] = os.pathsep.join([str(ROOT), clean.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )


def _report(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _import_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The last line of the child's traceback, which must be an ImportError subclass."""
    assert proc.returncode != 0, proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(("fastfl.errors.BackendError", "ImportError")), proc.stderr
    return last


@pytest.mark.parametrize("name", ["numba", "torch"])
def test_forced_backend_is_used_without_warning(name):
    report = _report(_child({"FASTFL_BACKEND": name}, HIDE_C))
    assert report == {"backend": name, "warnings": []}


@needs_native
def test_native_is_the_default_when_built():
    assert _report(_child({})) == {"backend": "native", "warnings": []}


@needs_native
def test_require_native_with_the_extension_built():
    assert _report(_child({"FASTFL_REQUIRE_NATIVE": "1"}))["backend"] == "native"


def test_unknown_backend_names_the_choices():
    message = _import_error(_child({"FASTFL_BACKEND": "bogus"}))
    assert "'bogus'" in message
    assert all(name in message for name in ("native", "numba", "torch"))


def test_require_native_without_the_extension_fails_at_import():
    message = _import_error(_child({"FASTFL_REQUIRE_NATIVE": "1"}, HIDE_C))
    assert "FASTFL_REQUIRE_NATIVE=1" in message
    assert "fastfl._C" in message  # the reason: the extension does not import


def test_require_native_contradicts_a_forced_fallback():
    message = _import_error(_child({"FASTFL_REQUIRE_NATIVE": "1", "FASTFL_BACKEND": "numba"}))
    assert "FASTFL_REQUIRE_NATIVE=1" in message and "numba" in message


def test_missing_extension_falls_back_to_numba_with_one_warning():
    report = _report(_child({}, HIDE_C))
    assert report["backend"] == "numba"
    assert len(report["warnings"]) == 1
    assert "numba" in report["warnings"][0] and "fastfl._C" in report["warnings"][0]


def test_without_numba_either_torch_is_used_with_one_warning():
    report = _report(_child({}, HIDE_C, HIDE_NUMBA))
    assert report["backend"] == "torch"
    (warning,) = report["warnings"]
    assert "fastfl._C" in warning and "numba" in warning


def test_forcing_numba_without_numba_names_the_package():
    message = _import_error(_child({"FASTFL_BACKEND": "numba"}, HIDE_NUMBA))
    assert "numba" in message and "pip install numba" in message


def test_numba_compiles_without_a_writable_cache():
    # No cache locator at all: the kernels must compile in memory and still be right.
    no_cache = "import numba.core.caching as c; (getattr(c, 'CacheImpl', None) or c._CacheImpl)._locator_classes = []"
    body = (
        "from fastfl.ops import _numba_cast as cv; assert type(cv.cast._cache).__name__ == 'NullCache'; "
        "x = torch.randn(1000); assert torch.equal(ops.cast(x, torch.float16), x.half())"
    )
    report = _report(_child({"FASTFL_BACKEND": "numba"}, no_cache, "import torch", body=body))
    assert report["backend"] == "numba"


def test_numba_kernels_run_in_a_forked_child_after_parallel_use():
    # A big kernel starts the thread pool; a forked child must get a working pool of its own.
    # torch stays single-threaded here: its own OpenMP pool hangs in a forked child.
    body = """
    import multiprocessing as mp, torch
    torch.set_num_threads(1)
    x = torch.randn(1 << 20)
    ops.mix_(torch.zeros_like(x), x, 0.5)
    def work(queue):
        s = torch.zeros_like(x)
        ops.mix_(s, x, 0.5)
        queue.put(bool(torch.equal(s, x * 0.5)))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=work, args=(queue,))
    child.start()
    child.join(120)
    assert child.exitcode == 0 and queue.get(timeout=5), child.exitcode
    """
    body = textwrap.indent(textwrap.dedent(body), " " * 8).strip()
    report = _report(_child({"FASTFL_BACKEND": "numba", "FASTFL_NUM_THREADS": "2"}, body=body))
    assert report["backend"] == "numba"


def test_numba_portable_half_bits_match_torch():
    """The bit-manipulation half conversions (used on CPUs without F16C) against torch's."""
    numba = pytest.importorskip("numba")
    half = pytest.importorskip("fastfl.ops._numba_half")

    @numba.njit
    def decode(bits, out):
        for i in range(bits.size):
            out[i] = half.half_to_f32_bits(bits[i])

    @numba.njit
    def encode(x, out):
        for i in range(x.size):
            out[i] = half.f32_to_half_bits(x[i])

    every_half = np.arange(1 << 16, dtype=np.uint16)
    got = np.empty(every_half.size, dtype=np.float32)
    decode(every_half, got)
    want = torch.from_numpy(every_half.view(np.int16)).view(torch.float16).float().numpy()
    finite = ~np.isnan(want)
    assert np.array_equal(got.view(np.uint32)[finite], want.view(np.uint32)[finite])
    assert np.isnan(got[~finite]).all()

    rng = np.random.default_rng(0)
    edges = [0x477FF000, 0x477FEFFF, 0x38800000, 0x387FFFFF, 0x33000000, 0x33000001, 0x7F800000, 0x7FC00000]
    patterns = np.concatenate(
        [np.array(edges, dtype=np.uint32), rng.integers(0, 1 << 32, 1 << 20, dtype=np.uint32)]
    )
    patterns = np.concatenate([patterns, patterns | np.uint32(0x80000000)])
    x = patterns.view(np.float32)
    out = np.empty(x.size, dtype=np.uint16)
    encode(x, out)
    want = torch.from_numpy(x).half().view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(out, want)

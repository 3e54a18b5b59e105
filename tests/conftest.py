from __future__ import annotations

import os
import socket

import pytest
import torch
from hypothesis import settings

from fastfl import ops

# CI (which sets CI=true) runs hypothesis with a fixed seed so that main stays green on rerun;
# local runs explore new examples each time and report a falsifying example with its seed.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true"):
    settings.load_profile("ci")

# FASTFL_BACKEND pins the kernel tests to one backend (the Makefile's per-backend runs);
# unset, each kernel test runs on every backend that loads here.
_FORCED = os.environ.get("FASTFL_BACKEND", "").strip().lower()
BACKENDS = [_FORCED] if _FORCED else ops.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per kernel backend that loads here (native, numba, torch)."""
    with ops.using(request.param):
        yield request.param


@pytest.fixture
def free_port() -> int:
    """A free TCP port on 127.0.0.1 (never a hard-coded one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

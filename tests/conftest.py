from __future__ import annotations

import socket

import pytest
import torch

from fastfl import ops

BACKENDS = ops.available_backends()


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

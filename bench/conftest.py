"""Tensor sets shared by every benchmark: an MLP, a CNN and a ResNet-18, built directly as tensors.

Each set is a list of fp32 parameter tensors with the shapes of a real model (no torchvision),
wrapped in an `nn.Module` for the APIs that take a model. Sets are built once per session.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from fastfl import ops

Shape = tuple[int, ...]


def mlp_shapes() -> list[Shape]:
    """An MLP 784-128-64-10 (MNIST): 109,386 parameters in 6 tensors."""
    dims = [784, 128, 64, 10]
    shapes: list[Shape] = []
    for fan_in, fan_out in itertools.pairwise(dims):
        shapes += [(fan_out, fan_in), (fan_out,)]
    return shapes


def cnn_shapes() -> list[Shape]:
    """A CIFAR-10 CNN: three 3x3 convolutions, then 2048-512-10: 1,147,466 parameters in 10 tensors."""
    shapes: list[Shape] = []
    for c_in, c_out in [(3, 32), (32, 64), (64, 128)]:
        shapes += [(c_out, c_in, 3, 3), (c_out,)]
    return [*shapes, (512, 2048), (512,), (10, 512), (10,)]


def resnet18_shapes() -> list[Shape]:
    """torchvision's resnet18() parameters: 11,689,512 in 62 tensors, in registration order."""
    shapes: list[Shape] = [(64, 3, 7, 7), (64,), (64,)]
    c_in = 64
    for c_out, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            first_in = c_in if block == 0 else c_out
            shapes += [(c_out, first_in, 3, 3), (c_out,), (c_out,), (c_out, c_out, 3, 3), (c_out,), (c_out,)]
            if block == 0 and (stride != 1 or first_in != c_out):
                shapes += [(c_out, first_in, 1, 1), (c_out,), (c_out,)]
        c_in = c_out
    return [*shapes, (1000, 512), (1000,)]


SHAPES = {"mlp": mlp_shapes, "cnn": cnn_shapes, "resnet18": resnet18_shapes}


@dataclass(frozen=True)
class TensorSet:
    """One model's parameters: as a list of tensors, as a module, and their sizes."""

    name: str
    params: list[Tensor]
    model: nn.Module

    @property
    def numel(self) -> int:
        return sum(p.numel() for p in self.params)

    @property
    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.params)


@functools.cache
def tensor_set(name: str) -> TensorSet:
    """Build (once) the named set with reproducible N(0, 0.05) values."""
    gen = torch.Generator().manual_seed(len(name))
    model = nn.Module()
    model.params = nn.ParameterList(
        nn.Parameter(torch.randn(s, generator=gen) * 0.05, requires_grad=False) for s in SHAPES[name]()
    )
    return TensorSet(name, list(model.params), model)


@functools.cache
def client_updates(name: str, k: int) -> Tensor:
    """K serialized client models of the named set (uniform in [-0.1, 0.1)), rows of a K x N fp32 matrix."""
    gen = torch.Generator().manual_seed(k)
    n = tensor_set(name).numel
    return torch.rand(k, n, generator=gen).sub_(0.5).mul_(0.2)


def fastfl_backends() -> list[str]:
    """The kernel backends to benchmark: all that load here."""
    return ops.available_backends()


@pytest.fixture(params=list(SHAPES))
def tset(request) -> TensorSet:
    """Each tensor set in turn."""
    return tensor_set(request.param)


@pytest.fixture(scope="session", autouse=True)
def _release_cached_sets():
    yield
    tensor_set.cache_clear()
    client_updates.cache_clear()


@pytest.fixture
def measure(benchmark):
    """Time `fn` under `benchmark.group`, record the bytes it moves, then check its result.

    `check(result)` runs after timing (also under --benchmark-disable, where `fn` runs once).
    """

    def run(group: str, fn, check, nbytes: int, **info) -> None:
        benchmark.group = group
        benchmark.extra_info["bytes"] = int(nbytes)
        benchmark.extra_info.update(info)
        check(benchmark(fn))

    return run

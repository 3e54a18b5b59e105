from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfl.utils import Aggregators


def reference_fedavg(xs, weights):
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    w = w / w.sum()
    return sum(wi * x.double() for wi, x in zip(w, xs, strict=True))


WEIGHT_FORMS = {
    "none": None,
    "int-list": [3, 1, 2, 4],
    "float-list": [0.5, 0.1, 0.2, 0.2],
    "numpy-f64": np.array([1.0, 2.0, 3.0, 4.0]),
    "numpy-f32": np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32),
    "tensor-f32": torch.tensor([1.0, 0.0, 3.0, 4.0]),
    "tensor-f64": torch.tensor([1.0, 2.0, 0.5, 4.0], dtype=torch.float64),
    "tensor-int": torch.tensor([1, 2, 3, 4]),
}


@pytest.mark.parametrize("form", WEIGHT_FORMS)
@pytest.mark.parametrize("shape", [(1000,), (3, 4, 5)])
def test_fedavg_matches_fedlab(backend, form, shape):
    fedlab_utils = pytest.importorskip("fedlab.utils")
    xs = [torch.randn(shape) for _ in range(4)]
    weights = WEIGHT_FORMS[form]
    ours = Aggregators.fedavg_aggregate(xs, weights)
    theirs = fedlab_utils.Aggregators.fedavg_aggregate(xs, weights)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "weights"),
    [
        (torch.float16, None),
        (torch.bfloat16, [1.0, 2.0]),
        (torch.float16, np.array([1.0, 3.0])),
        (torch.bfloat16, torch.tensor([1.0, 1.0], dtype=torch.bfloat16)),
        (torch.float64, None),
    ],
)
def test_fedavg_dtype_promotion_like_fedlab(backend, dtype, weights):
    fedlab_utils = pytest.importorskip("fedlab.utils")
    xs = [torch.randn(257).to(dtype) for _ in range(2)]
    ours = Aggregators.fedavg_aggregate(xs, weights)
    theirs = fedlab_utils.Aggregators.fedavg_aggregate(xs, weights)
    assert ours.dtype == theirs.dtype
    tol = 1e-2 if theirs.dtype in (torch.float16, torch.bfloat16) else 1e-6
    torch.testing.assert_close(ours.double(), theirs.double(), rtol=tol, atol=tol)


def test_fedavg_without_fedlab_reference(backend):
    xs = [torch.randn(100) for _ in range(3)]
    out = Aggregators.fedavg_aggregate(xs, [1, 2, 3])
    torch.testing.assert_close(out.double(), reference_fedavg(xs, [1, 2, 3]), rtol=1e-6, atol=1e-6)
    assert torch.equal(Aggregators.fedavg_aggregate(xs[:1]), xs[0])


def test_fedavg_out_buffer(backend):
    xs = [torch.randn(64) for _ in range(5)]
    out = torch.empty(64)
    assert Aggregators.fedavg_aggregate(xs, out=out) is out
    torch.testing.assert_close(out.double(), reference_fedavg(xs, [1] * 5), rtol=1e-6, atol=1e-6)
    half = Aggregators.fedavg_aggregate(xs, out=torch.empty(64, dtype=torch.bfloat16))
    torch.testing.assert_close(half.double(), reference_fedavg(xs, [1] * 5), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, -1.0, 2.0], r"weights\[1\] is -1.0; weights must be finite and non-negative"),
        ([-1.0, -1.0, -2.0], r"weights\[0\] is -1.0"),  # FedLab accepts these (they normalise to > 0)
        ([0, 0, 0], "sum to zero"),
        (torch.zeros(3), "sum to zero"),
        ([1.0, float("nan"), 1.0], r"weights\[1\] is nan"),
        ([1.0, 2.0], "weights has 2 entries but there are 3 inputs"),
    ],
)
def test_fedavg_bad_weights(weights, message):
    xs = [torch.ones(4) for _ in range(3)]
    with pytest.raises(ValueError, match=message):
        Aggregators.fedavg_aggregate(xs, weights)


def test_fedavg_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        Aggregators.fedavg_aggregate([])
    with pytest.raises(ValueError, match=r"serialized_params_list\[1\] has shape \(5,\)"):
        Aggregators.fedavg_aggregate([torch.ones(4), torch.ones(5)])
    with pytest.raises(TypeError, match=r"serialized_params_list\[0\] has dtype torch.int64"):
        Aggregators.fedavg_aggregate([torch.ones(4, dtype=torch.int64)])
    with pytest.raises(TypeError, match="must be a list of tensors"):
        Aggregators.fedavg_aggregate(torch.ones(2, 4))
    with pytest.raises(TypeError, match="numbers"):
        Aggregators.fedavg_aggregate([torch.ones(4)], ["a"])
    with pytest.raises(ValueError, match="out must be contiguous with 4 elements"):
        Aggregators.fedavg_aggregate([torch.ones(4)], out=torch.empty(5))


def test_fedavg_non_contiguous_inputs(backend):
    xs = [torch.randn(6, 4).t() for _ in range(3)]
    out = Aggregators.fedavg_aggregate(xs, [1, 1, 2])
    assert out.shape == (4, 6)
    torch.testing.assert_close(out.double(), reference_fedavg(xs, [1, 1, 2]), rtol=1e-6, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 12),
    n=st.integers(0, 300),
    data=st.data(),
)
def test_fedavg_hypothesis(k, n, data):
    weights = data.draw(st.lists(st.floats(0.0, 1e3), min_size=k, max_size=k).filter(lambda w: sum(w) > 1e-3))
    gen = torch.Generator().manual_seed(k * 1000 + n)
    xs = [torch.randn(n, generator=gen) for _ in range(k)]
    out = Aggregators.fedavg_aggregate(xs, weights)
    torch.testing.assert_close(out.double(), reference_fedavg(xs, weights), rtol=1e-5, atol=1e-5)


def test_fedasync_matches_fedlab_and_returns_a_new_tensor(backend):
    fedlab_utils = pytest.importorskip("fedlab.utils")
    server, new = torch.randn(1000), torch.randn(1000)
    keep = server.clone()
    ours = Aggregators.fedasync_aggregate(server, new, 0.3)
    theirs = fedlab_utils.Aggregators.fedasync_aggregate(server, new, 0.3)
    assert ours is not server and torch.equal(server, keep)
    assert ours.dtype == theirs.dtype
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    mixed = Aggregators.fedasync_aggregate(server.half(), new, 0.5)
    assert mixed.dtype == fedlab_utils.Aggregators.fedasync_aggregate(server.half(), new, 0.5).dtype


def test_fedasync_in_place(backend):
    server, new = torch.randn(3, 7), torch.randn(3, 7)
    expected = 0.75 * server + 0.25 * new
    assert Aggregators.fedasync_aggregate_(server, new, 0.25) is server
    torch.testing.assert_close(server, expected)
    assert torch.equal(Aggregators.fedasync_aggregate(server, new, 1.0), new)
    assert torch.equal(Aggregators.fedasync_aggregate(server, new, 0.0), server)


def test_fedasync_errors():
    a = torch.ones(4)
    with pytest.raises(ValueError, match=r"alpha is 1.5; FedAsync mixes with 0 <= alpha <= 1"):
        Aggregators.fedasync_aggregate(a, a, 1.5)
    with pytest.raises(ValueError, match=r"alpha is -0\.1"):
        Aggregators.fedasync_aggregate_(a, a, -0.1)
    with pytest.raises(ValueError, match=r"new_param has shape \(5,\) but server_param has \(4,\)"):
        Aggregators.fedasync_aggregate(a, torch.ones(5), 0.5)
    with pytest.raises(TypeError, match=r"server_param has dtype torch\.int64"):
        Aggregators.fedasync_aggregate(torch.ones(4, dtype=torch.int64), a, 0.5)
    with pytest.raises(TypeError, match="alpha must be a number"):
        Aggregators.fedasync_aggregate(a, a, "half")
    with pytest.raises(ValueError, match="not contiguous"):
        Aggregators.fedasync_aggregate_(torch.ones(4, 3).t(), torch.ones(3, 4), 0.5)

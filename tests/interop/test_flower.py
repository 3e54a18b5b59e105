from __future__ import annotations

import io

import numpy as np
import pytest

from fastfl.interop import aggregate_ndarrays, npy_view

flwr = pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg as FlowerFedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords as flower_arrayrecords

from fastfl.interop.flower import FedAvg, aggregate_arrayrecords, aggregate_inplace

SHAPES = [(16, 3, 3, 3), (16,), (10, 64), (10,), ()]


def _client(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES] + [np.array(rng.integers(0, 100))]


def _results(k: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    results = []
    for i in range(k):
        params = ndarrays_to_parameters(_client(rng))
        fit = FitRes(Status(Code.OK, ""), params, num_examples=int(rng.integers(1, 500)), metrics={"i": i})
        results.append((None, fit))
    return results


def _close(ours, theirs, rtol=2e-6):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("inplace", [True, False])
def test_strategy_equals_flowers_fedavg(inplace):
    results = _results()
    flower = FlowerFedAvg(inplace=inplace)
    ours = FedAvg(inplace=inplace)
    theirs, _ = flower.aggregate_fit(1, [(p, r) for p, r in _results()], [])
    mine, metrics = ours.aggregate_fit(1, results, [])
    got, want = parameters_to_ndarrays(mine), parameters_to_ndarrays(theirs)
    _close(got[:5], want[:5])
    for a, b in zip(got[:5], want[:5], strict=True):
        assert a.dtype == b.dtype == np.float32
    # the integer layer: Flower's `aggregate` arithmetic (float64 weighted mean)
    reference = sum(r.num_examples * parameters_to_ndarrays(r.parameters)[5] for _, r in _results())
    np.testing.assert_allclose(got[5], reference / sum(r.num_examples for _, r in _results()))
    assert metrics == {}
    assert ours.aggregate_fit(1, [], []) == (None, {})
    assert ours.aggregate_fit(1, results, [RuntimeError("x")])[0] is not None  # accept_failures default


def test_aggregate_inplace_reuses_out_and_leaves_inputs_alone():
    results = _results(3)
    before = [parameters_to_ndarrays(r.parameters) for _, r in results]
    out = [np.empty(s, np.float32) for s in SHAPES] + [np.empty((), np.float64)]
    merged = aggregate_inplace(results, out=out)
    assert all(m is o for m, o in zip(merged, out, strict=True))
    after = [parameters_to_ndarrays(r.parameters) for _, r in results]
    for x, y in zip(before, after, strict=True):
        for a, b in zip(x, y, strict=True):
            np.testing.assert_array_equal(a, b)


def test_message_api_aggregation_equals_flowers():
    rng = np.random.default_rng(3)
    records = []
    for _ in range(4):
        arrays = ArrayRecord({f"w{j}": Array(a) for j, a in enumerate(_client(rng)[:5])})
        records.append(
            RecordDict(
                {"arrays": arrays, "metrics": MetricRecord({"num-examples": int(rng.integers(1, 99))})}
            )
        )
    ours = aggregate_arrayrecords(records, "num-examples")
    theirs = flower_arrayrecords(records, "num-examples")
    assert list(ours.keys()) == list(theirs.keys())
    _close([ours[k].numpy() for k in ours], [theirs[k].numpy() for k in theirs])


def test_npy_view_reads_in_place():
    for a in (
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.ones((2, 3))),
        np.float64(2.5),
    ):
        buf = io.BytesIO()
        np.save(buf, a)
        view = npy_view(buf.getvalue())
        np.testing.assert_array_equal(view, a)
    buf = io.BytesIO()
    np.save(buf, np.ones(4, np.float32))
    blob = buf.getvalue()
    assert not npy_view(blob).flags.writeable  # a view of the bytes, not a copy


def test_aggregate_ndarrays_errors():
    with pytest.raises(ValueError, match="result 1 layer 0"):
        aggregate_ndarrays([[np.ones(3, np.float32)], [np.ones(4, np.float32)]], [1, 1])
    with pytest.raises(ValueError, match="weights"):
        aggregate_ndarrays([[np.ones(3, np.float32)]], [-1])

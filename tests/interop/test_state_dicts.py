from __future__ import annotations

import pytest
import torch
from torch import nn

from fastfl.errors import UpdateFormatError
from fastfl.utils import aggregate_state_dicts


def _models(k: int, dtype=torch.float32) -> list[nn.Module]:
    torch.manual_seed(0)
    models = []
    for i in range(k):
        m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2)).to(dtype)
        m[1].num_batches_tracked.fill_(10 * i + 1)
        m[1].running_mean.normal_()
        models.append(m)
    return models


def _reference(sds, weights):
    total = sum(weights)
    ref = {}
    for key, t in sds[0].items():
        mean = sum(w / total * sd[key].double() for w, sd in zip(weights, sds, strict=True))
        ref[key] = torch.round(mean).to(t.dtype) if not t.is_floating_point() else mean.to(t.dtype)
    return ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_weighted_mean_of_every_tensor(dtype):
    sds = [m.state_dict() for m in _models(3, dtype)]
    weights = [5, 1, 2]
    got = aggregate_state_dicts(sds, weights)
    ref = _reference(sds, weights)
    assert list(got) == list(sds[0])
    tol = {torch.float32: 1e-6, torch.float64: 1e-12, torch.float16: 1e-3, torch.bfloat16: 1e-2}[dtype]
    for key in ref:
        assert got[key].dtype == sds[0][key].dtype
        torch.testing.assert_close(got[key], ref[key], rtol=tol, atol=tol)
    # integer buffers: the weighted mean, rounded: (5*1 + 1*11 + 2*21) / 8 = 7.25 -> 7
    assert got["1.num_batches_tracked"].item() == 7


def test_out_is_written_in_place_and_bool_copied_from_first():
    models = _models(2)
    target = _models(1)[0]
    out = target.state_dict()
    before = out["0.weight"].data_ptr()
    result = aggregate_state_dicts([m.state_dict() for m in models], torch.tensor([1.0, 3.0]), out=out)
    assert result is out and out["0.weight"].data_ptr() == before
    torch.testing.assert_close(target[0].weight, 0.25 * models[0][0].weight + 0.75 * models[1][0].weight)
    flags = [{"mask": torch.tensor([True, False])}, {"mask": torch.tensor([False, False])}]
    assert aggregate_state_dicts(flags, [1, 1])["mask"].tolist() == [True, False]


def test_mismatches_and_bad_weights_are_named():
    a, b = (m.state_dict() for m in _models(2))
    with pytest.raises(UpdateFormatError, match=r"state_dicts\[1\] lacks '3.bias'"):
        aggregate_state_dicts([a, {k: v for k, v in b.items() if k != "3.bias"}], [1, 1])
    with pytest.raises(UpdateFormatError, match=r"state_dicts\[1\]\['3.bias'\] is \(3,\)"):
        aggregate_state_dicts([a, {**b, "3.bias": torch.zeros(3)}], [1, 1])
    with pytest.raises(UpdateFormatError, match="got 2 state_dicts but 1 weights"):
        aggregate_state_dicts([a, b], [1])
    with pytest.raises(UpdateFormatError, match=r"weights\[1\] must be a finite number >= 0"):
        aggregate_state_dicts([a, b], [1, float("nan")])
    with pytest.raises(UpdateFormatError, match="sum to 0"):
        aggregate_state_dicts([a, b], [0, 0])
    with pytest.raises(ValueError, match="state_dicts is empty"):
        aggregate_state_dicts([], [])

from __future__ import annotations

import logging
import random

import pytest
import torch
from torch import nn

from fastfl.core._updates import UpdateFormatError, counts_meta
from fastfl.core.model_maintainer import read_params
from fastfl.core.server import (
    AsyncParameterServerHandler,
    ParameterServerBackendHandler,
    SyncParameterServerHandler,
)
from fastfl.core.server.handler import staleness_weight


def _model():
    return nn.Sequential(nn.Linear(3, 2))  # 8 parameters


def _sync(**kw):
    h = SyncParameterServerHandler(
        _model(), global_round=kw.pop("rounds", 2), sample_ratio=kw.pop("ratio", 0.3), **kw
    )
    h.client_num_in_total = 10
    return h


def test_base_handler_defaults():
    h = ParameterServerBackendHandler(_model())
    assert h.if_stop is False
    assert len(h.downlink_package) == 1
    with pytest.raises(NotImplementedError):
        h._update_global_model([])


def test_sampling_is_fedlabs_draw_seeded_and_sized():
    random.seed(9)
    fedlab_draw = random.sample(range(10), 3)
    random.seed(9)
    assert _sync().sample_clients() == fedlab_draw  # the same ids in the same (unsorted) order
    a, b = _sync(seed=5), _sync(seed=5)
    ids = a.sample_clients()
    assert ids == random.Random(5).sample(range(10), 3) and len(ids) == a.client_num_per_round == 3
    assert ids == b.sample_clients()
    assert all(0 <= i < 10 for i in ids)
    a.mark_unavailable(range(8))
    assert set(a.sample_clients()) == {8, 9}
    assert a.round_target == 2
    a.mark_available(range(2))
    assert set(a.sample_clients()) <= {0, 1, 8, 9}


def test_client_num_per_round_and_ratio_checks():
    h = _sync(ratio=0.05)
    assert h.client_num_per_round == 1
    with pytest.raises(ValueError, match="sample_ratio"):
        SyncParameterServerHandler(_model(), 1, 1.5)
    h.client_num_in_total = 0
    with pytest.raises(ValueError, match="client_num_in_total"):
        h.sample_clients()


def test_uniform_fedavg_streams_and_completes_round():
    h = _sync()
    h.sample_clients()
    ups = [torch.randn(8) for _ in range(3)]
    assert h._update_global_model([ups[0]]) is False
    assert h._update_global_model([ups[1], ups[2]]) is True
    torch.testing.assert_close(read_params(h.model), torch.stack(ups).mean(0))
    assert h.round == 1 and h.last_round_clients == 3 and not h.if_stop


def test_weighted_fedavg_uses_sample_counts_from_meta_and_local_aggregates():
    h = _sync(weighted=True, rounds=3)
    h.sample_clients()
    ups = [torch.randn(8) for _ in range(3)]
    h.receive_meta(counts_meta([10]))
    h._update_global_model([ups[0]])
    local_mean = (30 * ups[1] + 60 * ups[2]) / 90
    h.receive_meta(counts_meta([30, 60], aggregated=True))
    assert h._update_global_model([local_mean]) is True
    want = (10 * ups[0] + 30 * ups[1] + 60 * ups[2]) / 100
    torch.testing.assert_close(read_params(h.model), want)
    h.sample_clients()  # K models with per-model counts
    h.receive_meta(counts_meta([1, 3, 4]))
    assert h._update_global_model(ups) is True
    torch.testing.assert_close(read_params(h.model), (ups[0] + 3 * ups[1] + 4 * ups[2]) / 8)


def test_weighted_without_counts_and_uniform_with_local_aggregate_are_errors():
    h = _sync(weighted=True)
    h.sample_clients()
    with pytest.raises(UpdateFormatError, match="sample counts"):
        h._update_global_model([torch.randn(8)])
    u = _sync()
    u.sample_clients()
    u.receive_meta(counts_meta([1, 2], aggregated=True))
    with pytest.raises(UpdateFormatError, match="aggregate"):
        u._update_global_model([torch.randn(8)])


def test_a_trailing_counts_tensor_is_not_a_fedlab_payload():
    u = _sync()
    u.sample_clients()
    with pytest.raises(UpdateFormatError, match="every tensor of a FedLab upload is one model"):
        u._update_global_model([torch.randn(8), torch.tensor([1.0, 2.0])])


def test_too_many_updates_and_wrong_size_are_errors_without_state_loss():
    h = _sync()
    h.sample_clients()
    h._update_global_model([torch.ones(8), torch.ones(8)])
    with pytest.raises(UpdateFormatError, match="only 3 clients"):
        h._update_global_model([torch.ones(8), torch.ones(8)])
    with pytest.raises(UpdateFormatError, match="elements"):
        h._update_global_model([torch.ones(9)])
    assert h.received == 2
    assert h._update_global_model([torch.ones(8) * 4]) is True
    torch.testing.assert_close(read_params(h.model), torch.full((8,), 2.0))


def test_finish_round_with_partial_updates_and_with_none():
    h = _sync(rounds=3)
    before = read_params(h.model)
    h.sample_clients()
    assert h.finish_round() is False
    torch.testing.assert_close(read_params(h.model), before)
    h.sample_clients()
    h._update_global_model([torch.full((8,), 5.0)])
    assert h.finish_round() is True
    torch.testing.assert_close(read_params(h.model), torch.full((8,), 5.0))
    assert h.round == 2


def test_downlink_is_one_reused_buffer_and_keep_updates_list():
    seen = []
    h = _sync(keep_updates=True, on_round_end=lambda hh: seen.append(hh.round))
    d1 = h.downlink_package[0]
    d2 = h.downlink_package[0]
    assert d1.data_ptr() == d2.data_ptr()
    h.sample_clients()
    h._update_global_model([torch.ones(8)])
    assert len(h.client_buffer_cache) == 1
    h._update_global_model([torch.ones(8), torch.ones(8)])
    assert seen == [1] and h.client_buffer_cache == []


@pytest.mark.parametrize(
    ("strategy", "hinge", "s", "want"),
    [
        ("constant", "paper", 7, 0.5),
        ("hinge", "paper", 4, 0.5),
        ("hinge", "paper", 5, 0.5 / 11),
        ("hinge", "fedlab", 5, 0.5 / 20),
        ("hinge", "paper", 8, 0.5 / 41),
        ("hinge", "fedlab", 8, 0.5 / 50),
        ("polynomial", "paper", 1, 0.5 / 1024),
        ("polynomial", "paper", 0, 0.5),
    ],
)
def test_staleness_weights(strategy, hinge, s, want):
    assert staleness_weight(0.5, s, strategy, 10, 4, hinge) == pytest.approx(want)


def test_negative_staleness_is_mixed_as_fedlab_with_one_warning(caplog):
    h = AsyncParameterServerHandler(_model(), alpha=0.5, total_time=9, strategy="polynomial")
    start = read_params(h.model)
    new = torch.randn(8)
    with caplog.at_level(logging.WARNING, logger="fastfl.server"):
        h._update_global_model([new, torch.tensor([5.0])])  # the client's time 5 is ahead of 1
        h._update_global_model([new, torch.tensor([7.0])])
    torch.testing.assert_close(read_params(h.model), 0.25 * start + 0.75 * new)
    assert h.time == 3 and sum("ahead of the server" in r.message for r in caplog.records) == 1
    strict = AsyncParameterServerHandler(_model(), 0.5, 9, strict_staleness=True)
    with pytest.raises(UpdateFormatError, match="ahead of the server"):
        strict._update_global_model([new, torch.tensor([5.0])])
    assert strict.time == 1


def test_staleness_errors():
    with pytest.raises(ValueError, match="Invalid strategy"):
        staleness_weight(0.5, 1, "linear", 10, 4)
    with pytest.raises(ValueError, match="negative"):
        staleness_weight(0.5, -1, "polynomial", 10, 4)
    with pytest.raises(ValueError, match="Invalid strategy"):
        AsyncParameterServerHandler(_model(), 0.5, 5, strategy="bad")


def test_async_handler_mixes_and_counts_time():
    h = AsyncParameterServerHandler(_model(), alpha=0.5, total_time=3, strategy="hinge", a=2, b=0)
    start = read_params(h.model)
    _, t = h.downlink_package
    assert t.tolist() == [1.0]
    new = torch.randn(8)
    h._update_global_model([new, torch.tensor([1.0])])  # staleness 0
    torch.testing.assert_close(read_params(h.model), 0.5 * start + 0.5 * new)
    mid = read_params(h.model)
    h._update_global_model([new, torch.tensor([1.0])])  # staleness 1 -> 0.5 / (2*1+1)
    a = 0.5 / 3
    torch.testing.assert_close(read_params(h.model), (1 - a) * mid + a * new)
    assert h.time == 3 and h.if_stop and h.last_alpha == pytest.approx(a)
    with pytest.raises(UpdateFormatError):
        h._update_global_model([new])

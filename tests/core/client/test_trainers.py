from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fastfl.core.client import (
    ORDINARY_TRAINER,
    SERIAL_TRAINER,
    ClientTrainer,
    SerialTrainer,
    SGDClientTrainer,
    SubsetSerialTrainer,
)
from fastfl.core.model_maintainer import read_params, write_params_


def _data(n=60):
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g))


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def _train_reference(model, flat, x, y, lr, epochs, batch):
    """One client trained by hand: plain SGD on fixed-order batches."""
    write_params_(model, flat)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        for s in range(0, len(y), batch):
            loss = nn.functional.cross_entropy(model(x[s : s + batch]), y[s : s + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return read_params(model)


def test_base_classes_instantiate_and_raise_when_used():
    t = ClientTrainer(_model())
    assert (t.client_num, t.type) == (1, ORDINARY_TRAINER)
    with pytest.raises(NotImplementedError):
        _ = t.uplink_package
    with pytest.raises(NotImplementedError):
        t.local_process([torch.zeros(1)])
    s = SerialTrainer(_model(), client_num=3)
    assert (s.client_num, s.type) == (3, SERIAL_TRAINER)
    with pytest.raises(NotImplementedError):
        s.local_process([0], [read_params(s.model)])


def test_subset_serial_trainer_matches_hand_training_and_all_start_from_global():
    data = _data()
    slices = [list(range(20)), list(range(20, 45)), list(range(45, 60))]
    saved = copy.deepcopy(slices)
    trainer = SubsetSerialTrainer(
        _model(), data, slices, args={"epochs": 2, "batch_size": 7, "lr": 0.1, "shuffle": False}
    )
    global_flat = read_params(_model()) + 0.01
    out = trainer.local_process([2, 0], [global_flat.clone()])
    assert len(out) == 2
    x, y = data.tensors
    for got, cid in zip(out, [2, 0], strict=True):
        idx = torch.tensor(slices[cid])
        want = _train_reference(_model(), global_flat, x[idx], y[idx], 0.1, 2, 7)
        torch.testing.assert_close(got, want)
    assert slices == saved, "the caller's index lists must not be modified"
    up = trainer.uplink_package
    assert up is out and len(up) == 2  # FedLab's uplink: the K vectors, nothing else
    assert trainer.uplink_meta == {"num_samples": 35, "num_clients": 2, "n0": 15, "n1": 20}


def test_uplink_is_fedlabs_list_and_report_samples_false_drops_the_meta():
    data = _data()
    trainer = SubsetSerialTrainer(
        _model(), data, [list(range(30)), list(range(30, 60))], report_samples=False
    )
    trainer.local_process([0, 1], [read_params(_model())])
    up = trainer.uplink_package
    assert len(up) == 2 and all(t.numel() == trainer.num_params for t in up)
    assert trainer.uplink_meta == {}


def test_kept_results_are_not_overwritten_and_dropped_ones_are_reused():
    data = _data()
    trainer = SubsetSerialTrainer(_model(), data, [list(range(30)), list(range(30, 60))])
    flat = read_params(_model())
    kept = trainer.local_process([0, 1], [flat])
    snapshot = [t.clone() for t in kept]
    trainer.local_process([1, 0], [flat + 1.0])  # a second round while the first result is held
    for t, want in zip(kept, snapshot, strict=True):
        assert torch.equal(t, want)
    ptrs = set()
    for r in range(4):  # the standard loop: each round's list dropped after use
        out = trainer.local_process([0, 1], [flat + r])
        ptrs.add(out[0].untyped_storage().data_ptr())
        del out
    assert len(ptrs) <= 2  # storage comes from the trainer's pool, not a new allocation per round
    view = trainer.local_process([0], [flat])[0][:3]  # a view alone keeps the storage alive too
    saved = view.clone()
    trainer.local_process([1], [flat + 2.0])
    assert torch.equal(view, saved)


def test_local_aggregation_equals_weighted_mean_of_clients():
    data = _data()
    slices = [list(range(10)), list(range(10, 40)), list(range(40, 60))]
    args = {"epochs": 1, "batch_size": 5, "lr": 0.05, "shuffle": False}
    flat = read_params(_model())
    each = SubsetSerialTrainer(_model(), data, slices, args=args)
    models = [m.clone() for m in each.local_process([0, 1, 2], [flat])]
    agg = SubsetSerialTrainer(_model(), data, slices, args=args, aggregate=True)
    (mean,) = agg.local_process([0, 1, 2], [flat])
    want = (10 * models[0] + 30 * models[1] + 20 * models[2]) / 60
    torch.testing.assert_close(mean, want)
    assert len(agg.uplink_package) == 1
    assert agg.uplink_meta == {"num_samples": 60, "num_clients": 3}


def test_seeded_shuffle_depends_on_global_client_id_not_process():
    data = _data()
    slices = [list(range(i * 15, i * 15 + 15)) for i in range(4)]
    args = {"epochs": 2, "batch_size": 4, "lr": 0.1}
    flat = read_params(_model())
    whole = SubsetSerialTrainer(_model(), data, slices, args=args, seed=3)
    a = [m.clone() for m in whole.local_process([2, 3], [flat])]
    part = SubsetSerialTrainer(_model(), data, slices[2:], args=args, seed=3, id_offset=2)
    b = part.local_process([0, 1], [flat])
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)
    other = SubsetSerialTrainer(_model(), data, slices, args=args, seed=4).local_process([2], [flat])
    assert not torch.equal(other[0], a[0])


def test_serial_trainer_rejects_unknown_ids_and_bad_args():
    data = _data()
    trainer = SubsetSerialTrainer(_model(), data, [list(range(10))])
    with pytest.raises(ValueError, match="out of range"):
        trainer.local_process([1], [read_params(_model())])
    with pytest.raises(ValueError, match="batch_size"):
        SubsetSerialTrainer(_model(), data, [list(range(10))], args={"batch_size": 0})


def test_generic_dataset_path_uses_a_dataloader():
    class Wrapped(torch.utils.data.Dataset):
        def __init__(self, base):
            self.base = base

        def __len__(self):
            return len(self.base)

        def __getitem__(self, i):
            return self.base[i]

    data = _data()
    args = {"epochs": 1, "batch_size": 6, "lr": 0.1, "shuffle": False}
    flat = read_params(_model())
    fast = SubsetSerialTrainer(_model(), data, [list(range(30))], args=args).local_process([0], [flat])
    slow = SubsetSerialTrainer(_model(), Wrapped(data), [list(range(30))], args=args).local_process(
        [0], [flat]
    )
    torch.testing.assert_close(fast[0], slow[0])


def test_sgd_client_trainer_trains_and_reports_samples():
    data = _data()
    model = _model()
    loader = DataLoader(data, batch_size=16, drop_last=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = SGDClientTrainer(model, loader, 2, opt, nn.CrossEntropyLoss())
    start = read_params(_model())
    trainer.local_process([start])
    x, y = data.tensors
    want = _train_reference(_model(), start, x[:48], y[:48], 0.1, 2, 16)
    torch.testing.assert_close(trainer.model_parameters, want)
    up = trainer.uplink_package
    assert len(up) == 1 and trainer.uplink_meta == {"num_samples": 48}
    assert trainer.last_loss is not None
    trainer.report_samples = False
    assert trainer.uplink_meta == {}

from __future__ import annotations

import ast
import json
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fastfl.utils import functional as F


def test_average_meter_update_is_fedlabs_and_update_mean_weights_by_n():
    meter = F.AverageMeter()
    meter.update(2.0, n=3)
    meter.update(4.0)
    assert (meter.val, meter.sum, meter.count, meter.avg) == (4.0, 6.0, 4, 1.5)  # FedLab's arithmetic
    acc = F.AverageMeter()
    for correct, batch in [(40, 50), (45, 50)]:
        acc.update(correct, batch)
    assert acc.avg == pytest.approx(0.85)  # FedLab's accuracy pattern
    mean = F.AverageMeter()
    mean.update_mean(2.0, n=3)
    mean.update_mean(4.0)
    assert (mean.val, mean.sum, mean.count, mean.avg) == (4.0, 10.0, 4, 2.5)
    mean.update_mean(100.0, n=0)
    assert mean.avg == 2.5
    mean.reset()
    assert (mean.val, mean.sum, mean.count, mean.avg) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="n is -1"):
        mean.update_mean(1.0, n=-1)


def classifier_and_loader(n=10, batch=4):
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(n, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    return model, DataLoader(TensorDataset(x, y), batch_size=batch), x, y


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_evaluate_mean_returns_mean_loss_over_samples(reduction):
    model, loader, x, y = classifier_and_loader()  # batches of 4, 4 and 2
    model.eval()
    with torch.no_grad():
        logits = model(x)
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    expected_acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    loss, acc = F.evaluate_mean(model, nn.CrossEntropyLoss(reduction=reduction), loader)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert acc == pytest.approx(expected_acc)
    assert model.training  # restored


def test_evaluate_restores_mixed_modes_and_takes_plain_functions():
    model, loader, _, _ = classifier_and_loader()
    model.train()
    model[1].eval()
    F.evaluate(model, nn.functional.cross_entropy, loader)
    assert model.training and model[0].training and not model[1].training


def test_evaluate_against_fedlab():
    fedlab_functional = pytest.importorskip("fedlab.utils.functional")
    model, loader, _, _ = classifier_and_loader()
    criterion = nn.CrossEntropyLoss()
    ours = F.evaluate(model, criterion, loader)
    theirs = fedlab_functional.evaluate(model, criterion, loader)
    assert ours[1] == pytest.approx(theirs[1])
    batch_means = [criterion(model(xb), yb).item() for xb, yb in loader]
    assert theirs[0] == pytest.approx(sum(batch_means), rel=1e-5)  # FedLab's sum of batch means (B8)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-6)  # evaluate keeps FedLab's numbers
    mean = F.evaluate_mean(model, criterion, loader)
    assert mean[0] == pytest.approx(
        (4 * batch_means[0] + 4 * batch_means[1] + 2 * batch_means[2]) / 10, rel=1e-5
    )


def test_evaluate_empty_loader():
    model, _, _, _ = classifier_and_loader()
    with pytest.raises(ValueError, match="test_loader yielded no samples"):
        F.evaluate(model, nn.CrossEntropyLoss(), [])


def test_accuracy_matches_fedlab():
    output, target = torch.randn(50, 7), torch.randint(0, 7, (50,))
    ours = F.accuracy(output, target, topk=(1, 3, 7))
    assert ours[2].item() == 1.0 and ours[0].shape == (1,) and ours[0].dtype == torch.float32
    top1 = (output.argmax(1) == target).float().mean()
    torch.testing.assert_close(ours[0], top1.reshape(1))
    fedlab_functional = pytest.importorskip("fedlab.utils.functional")
    theirs = fedlab_functional.accuracy(output, target, topk=(1, 3, 7))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_accuracy_errors():
    with pytest.raises(ValueError, match=r"topk \(1, 9\) must lie in 1\.\.7"):
        F.accuracy(torch.randn(5, 7), torch.zeros(5, dtype=torch.long), topk=(1, 9))
    with pytest.raises(ValueError, match="output must be"):
        F.accuracy(torch.randn(5, 7), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        F.accuracy(torch.randn(0, 7), torch.zeros(0, dtype=torch.long))


def test_read_config_from_json(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"server": {"ip": "127.0.0.1", "port": "3002", "world_size": 3, "rank": 0}}))
    assert F.read_config_from_json(str(path), "server") == ("127.0.0.1", "3002", 3, 0)
    with pytest.raises(KeyError, match=r"has no entry 'client'; it has \['server'\]"):
        F.read_config_from_json(str(path), "client")
    fedlab_functional = pytest.importorskip("fedlab.utils.functional")
    assert fedlab_functional.read_config_from_json(str(path), "server") == ("127.0.0.1", "3002", 3, 0)


def test_save_and_load_dict(tmp_path):
    obj = {0: np.arange(5), "b": [1, 2]}
    F.save_dict(obj, str(tmp_path / "d.pkl"))
    back = F.load_dict(str(tmp_path / "d.pkl"))
    assert back.keys() == obj.keys() and np.array_equal(back[0], obj[0]) and back["b"] == [1, 2]


DOC_TARGETS = [0, 2, 3, 3, 3, 0, 0, 1, 2, 3, 1, 1, 2, 2, 3]
DOC_INDICES = {0: [0, 1, 2, 3, 4], 1: [5, 6, 7, 8, 9], 2: [10, 11, 12, 13, 14]}
DOC_TEXT = """Class frequencies:
client,class0,class1,class2,class3,Amount
Client   0,0.200,0.00,0.200,0.600,5
Client   1,0.400,0.200,0.200,0.200,5
Client   2,0.00,0.400,0.400,0.200,5"""


def test_partition_report_text(tmp_path, capsys):
    F.partition_report(DOC_TARGETS, DOC_INDICES, file=str(tmp_path / "r.csv"))
    assert capsys.readouterr().out == DOC_TEXT + "\n"
    assert (tmp_path / "r.csv").read_text() == DOC_TEXT  # no trailing newline, as FedLab
    F.partition_report(torch.tensor(DOC_TARGETS), DOC_INDICES, verbose=False)
    assert capsys.readouterr().out == "No partition report generated\n"
    F.partition_report(np.array(DOC_TARGETS), DOC_INDICES, verbose=False, file=str(tmp_path / "q.csv"))
    assert capsys.readouterr().out == ""
    assert (tmp_path / "q.csv").read_text() == DOC_TEXT


def random_partition(seed):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 6, size=300)
    order = rng.permutation(300)
    cuts = np.sort(rng.choice(np.arange(1, 300), size=11, replace=False))
    ids = rng.permutation(12) * 10  # unsorted, non-contiguous ids
    return targets, {int(cid): part for cid, part in zip(ids, np.split(order, cuts), strict=True)}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("class_num", [None, 8])
def test_partition_report_matches_fedlab(tmp_path, capsys, seed, class_num):
    fedlab_functional = pytest.importorskip("fedlab.utils.functional")
    targets, indices = random_partition(seed)
    indices[999] = np.array([], dtype=np.int64)  # a client without data
    F.partition_report(targets, indices, class_num=class_num, file=str(tmp_path / "ours"))
    ours = capsys.readouterr().out
    fedlab_functional.partition_report(targets, indices, class_num=class_num, file=str(tmp_path / "theirs"))
    assert ours == capsys.readouterr().out
    assert (tmp_path / "ours").read_text() == (tmp_path / "theirs").read_text()
    assert "Client 999,0.00," in ours


def test_partition_report_needs_targets_or_class_num():
    with pytest.raises(ValueError, match="targets is empty"):
        F.partition_report([], {}, verbose=True)


def test_get_best_gpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="get_best_gpu needs a CUDA device") as info:
        F.get_best_gpu()
    assert isinstance(info.value, F.DeviceUnavailableError)


def fake_cuda(monkeypatch, uuids, torch_free):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(uuids))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(uuid=uuids[i]))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (torch_free[i], 10**10))


def fake_nvml(free_by_uuid):
    handles = list(free_by_uuid)
    calls = []
    return types.SimpleNamespace(
        nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: len(handles),
        nvmlDeviceGetHandleByIndex=lambda j: handles[j],
        nvmlDeviceGetUUID=lambda h: h.encode(),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(free=free_by_uuid[h]),
        calls=calls,
    )


def test_get_best_gpu_matches_nvml_devices_by_uuid(monkeypatch):
    # torch sees B then A (e.g. CUDA_VISIBLE_DEVICES=1,0); NVML lists them in PCI order A, B
    fake_cuda(monkeypatch, ["bbbb-2", "aaaa-1"], torch_free=[0, 0])
    nvml = fake_nvml({"GPU-aaaa-1": 100, "GPU-bbbb-2": 900})
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert F.get_best_gpu() == torch.device("cuda:0")  # B, the one with 900 free
    assert nvml.calls == ["init", "shutdown"]


def test_get_best_gpu_without_nvml_uses_torch(monkeypatch):
    fake_cuda(monkeypatch, ["x", "y", "z"], torch_free=[5, 50, 7])
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml now raises ImportError
    assert F.get_best_gpu() == torch.device("cuda:1")


def test_no_module_level_nvml_import():
    """NVML is imported inside get_best_gpu only (FedLab imports pynvml with fedlab.utils.functional)."""
    import fastfl.utils

    for path in Path(fastfl.utils.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any("nvml" in n for n in names), path


def test_setup_seed_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    F.setup_seed(123)
    first = draw()
    F.setup_seed(123)
    assert draw() == first
    assert torch.backends.cudnn.deterministic

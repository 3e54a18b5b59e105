from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from fastfl.cli import main
from tests.cli.conftest import assert_same_model, load_model


def _run(*argv) -> None:
    assert main(["run", *map(str, argv), "--quiet"]) == 0


def test_run_writes_config_metrics_curves_model(tmp_path, small_config):
    out = tmp_path / "run"
    _run(small_config, "--out", out, "--set", "run.eval_every=2")
    for name in ("config.toml", "metrics.csv", "metrics.json", "metrics.png", "model.pt", "partition.png"):
        assert (out / name).is_file(), name
    rows = json.loads((out / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rows] == [1, 2, 3]
    assert all(r["clients"] == 4 and r["bytes_sent"] > 0 for r in rows)
    assert np.isnan(rows[0]["accuracy"]) and rows[1]["accuracy"] > 0.1 and rows[2]["accuracy"] > 0.1
    split = json.loads((out / "partition.json").read_text())
    # 1438 training samples; FedLab's balanced iid split gives each of 20 clients 71 (drops 18)
    assert len(split) == 20 and {len(v) for v in split.values()} == {71}
    resolved = (out / "config.toml").read_text()
    assert "eval_every = 2" in resolved and "[algorithm]" in resolved
    # the resolved config repeats the run exactly
    _run(out / "config.toml", "--out", tmp_path / "again")
    assert_same_model(load_model(out), load_model(tmp_path / "again"))


def _algorithm_or_skip(name: str) -> None:
    from fastfl.cli.algorithms import find_algorithm
    from fastfl.errors import ConfigError

    try:
        find_algorithm(name)
    except ConfigError:
        pytest.skip(f"algorithm {name!r} is not in fastfl.contrib.algorithm here")


@pytest.mark.parametrize("algorithm", ["fedavg", "scaffold", "feddyn"])
def test_stopped_and_resumed_run_equals_uninterrupted(tmp_path, small_config, algorithm):
    _algorithm_or_skip(algorithm)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _run(small_config, "--out", whole, "--rounds", 5, "--checkpoint-every", 2, "--algorithm", algorithm)
    _run(
        small_config,
        "--out",
        parts,
        "--rounds",
        5,
        "--checkpoint-every",
        2,
        "--stop-after",
        3,
        "--algorithm",
        algorithm,
    )
    state = torch.load(parts / "checkpoint.pt", weights_only=True)
    assert state["round"] == 3
    _run("--resume", parts)
    assert_same_model(load_model(whole), load_model(parts))
    rows = json.loads((parts / "metrics.json").read_text())["rounds"]
    assert [r["round"] for r in rows] == [1, 2, 3, 4, 5]
    whole_rows = json.loads((whole / "metrics.json").read_text())["rounds"]
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in whole_rows]


def test_finished_run_continues_with_more_rounds(tmp_path, small_config):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _run(small_config, "--out", whole, "--rounds", 4)
    _run(small_config, "--out", parts, "--rounds", 2, "--checkpoint-every", 1)
    _run("--resume", parts, "--rounds", 4)
    assert_same_model(load_model(whole), load_model(parts))
    assert "rounds = 4" in (parts / "config.toml").read_text()


def test_fresh_run_in_a_used_folder_drops_the_old_checkpoint(tmp_path, small_config, capsys):
    out = tmp_path / "run"
    _run(small_config, "--out", out, "--checkpoint-every", 1, "--stop-after", 1)
    _run(small_config, "--out", out, "--rounds", 1)
    assert not (out / "checkpoint.pt").exists()
    assert main(["run", "--resume", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_resume_errors_are_clear(tmp_path, small_config, capsys):
    out = tmp_path / "run"
    _run(small_config, "--out", out, "--checkpoint-every", 1, "--stop-after", 1)
    assert main(["run", "--resume", str(out), "--set", "train.lr=0.5"]) == 2
    assert "train.lr: cannot change when resuming" in capsys.readouterr().err
    (out / "checkpoint.pt").write_bytes((out / "checkpoint.pt").read_bytes()[:100])
    assert main(["run", "--resume", str(out)]) == 2
    assert "corrupt checkpoint" in capsys.readouterr().err
    _run(small_config, "--out", out, "--seed", 2, "--checkpoint-every", 1, "--stop-after", 1)
    (out / "config.toml").write_text((out / "config.toml").read_text().replace("seed = 2", "seed = 3"))
    assert main(["run", "--resume", str(out)]) == 2
    assert "belongs to a different experiment" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "none")]) == 2
    assert "no config.toml there" in capsys.readouterr().err


def test_user_npz_and_pt_files_of_per_client_arrays(tmp_path, small_config):
    g = np.random.default_rng(0)
    arrays = {}
    for k in range(6):
        y = g.integers(0, 3, 30)
        arrays[f"x_{k}"] = (g.normal(size=(30, 5)) + y[:, None]).astype(np.float32)
        arrays[f"y_{k}"] = y
    arrays["x_test"], arrays["y_test"] = arrays["x_0"], arrays["y_0"]
    np.savez(tmp_path / "clients.npz", **arrays)
    _run(
        small_config,
        "--out",
        tmp_path / "npz",
        "--data",
        "file",
        "--set",
        f"data.path={tmp_path / 'clients.npz'}",
        "--set",
        "partition.clients=6",
    )
    rows = json.loads((tmp_path / "npz" / "metrics.json").read_text())["rounds"]
    assert rows[-1]["accuracy"] > 0.5
    clients = [(torch.from_numpy(arrays[f"x_{k}"]), torch.from_numpy(arrays[f"y_{k}"])) for k in range(6)]
    torch.save({"clients": clients, "test": clients[0]}, tmp_path / "clients.pt")
    _run(
        small_config,
        "--out",
        tmp_path / "pt",
        "--data",
        "file",
        "--set",
        f"data.path={tmp_path / 'clients.pt'}",
        "--set",
        "partition.clients=6",
    )
    assert_same_model(load_model(tmp_path / "npz"), load_model(tmp_path / "pt"))


def test_unreadable_user_files_are_one_line_errors(tmp_path, small_config, capsys):
    torch.save({"x_0": np.ones((3, 2))}, tmp_path / "numpy.pt")
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    np.savez(tmp_path / "empty.npz", a=np.ones(2))
    for name, words in [
        ("numpy.pt", "store torch tensors"),
        ("garbage.npz", "cannot read it"),
        ("empty.npz", "expected keys x_0, y_0"),
    ]:
        argv = [
            "run",
            str(small_config),
            "--data",
            "file",
            "--set",
            f"data.path={tmp_path / name}",
            "--out",
            str(tmp_path / "o"),
        ]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and name in err, err
    assert not (tmp_path / "o").exists()


def test_callable_data_and_user_model_class(tmp_path, small_config, monkeypatch):
    (tmp_path / "userpkg.py").write_text(
        textwrap.dedent("""
        import torch
        from torch import nn
        from torch.utils.data import TensorDataset

        def make(seed, n=200):
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(n, 4, generator=g)
            y = (x[:, 0] > 0).long()
            return TensorDataset(x, y), TensorDataset(x[:50], y[:50])

        class Net(nn.Module):
            def __init__(self, width=8):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))

            def forward(self, x):
                return self.body(x)
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    _run(
        small_config,
        "--out",
        out,
        "--data",
        "userpkg:make",
        "--set",
        "data.options={n = 300}",
        "--model",
        "userpkg:Net",
        "--set",
        "model.kwargs={width = 4}",
        "--rounds",
        2,
    )
    assert load_model(out)["body.0.weight"].shape == (4, 4)
    sys.modules.pop("userpkg", None)


@pytest.mark.parametrize(
    ("data", "model", "extra"),
    [
        ("fedprox-synthetic", "logistic", ["--set", "partition.clients=5", "--set", "data.dim=10"]),
        ("fcube", "mlp", ["--set", "data.samples=400", "--partition", "noniid-labeldir", "--clients", "5"]),
        ("synthetic", "linear", ["--set", "data.samples=400", "--set", "data.dim=20"]),
        ("digits", "cnn", ["--batch-clients", "4", "--partition", "noniid-#label"]),
    ],
)
def test_generated_data_models_and_partitions(tmp_path, small_config, data, model, extra):
    out = tmp_path / "run"
    _run(small_config, "--out", out, "--data", data, "--model", model, "--rounds", 1, *extra)
    rows = json.loads((out / "metrics.json").read_text())["rounds"]
    assert len(rows) == 1 and 0.0 <= rows[0]["accuracy"] <= 1.0


def test_tensorboard_events_readable_by_tensorboard(tmp_path, small_config):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "run"
    _run(small_config, "--out", out, "--set", "run.tensorboard=true")
    acc = event_accumulator.EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "accuracy", "round_time", "bytes_sent"} <= tags
    accuracy = [e.value for e in acc.Scalars("accuracy")]
    rows = json.loads((out / "metrics.json").read_text())["rounds"]
    assert [e.step for e in acc.Scalars("accuracy")] == [1, 2, 3]
    assert accuracy == pytest.approx([r["accuracy"] for r in rows])


def _synchronous_algorithms() -> list[str]:
    from fastfl.contrib.algorithm import ALGORITHMS

    return sorted(name for name, a in ALGORITHMS.items() if not a.asynchronous)


@pytest.mark.parametrize("algorithm", _synchronous_algorithms())
def test_every_synchronous_algorithm_runs_by_name(tmp_path, small_config, algorithm):
    out = tmp_path / "run"
    _run(
        small_config,
        "--out",
        out,
        "--algorithm",
        algorithm,
        "--rounds",
        1,
        "--clients",
        8,
        "--set",
        "partition.plot=false",
    )
    rows = json.loads((out / "metrics.json").read_text())["rounds"]
    assert len(rows) == 1 and np.isfinite(rows[0]["loss"])
    assert f'name = "{algorithm}"' in (out / "config.toml").read_text()


def test_hyperparameters_reach_the_algorithm_and_asynchronous_is_refused(tmp_path, small_config, capsys):
    from fastfl.cli.config import load_config
    from fastfl.cli.experiment import prepare

    cfg = load_config(
        small_config, [("algorithm.name", "fedprox"), ("algorithm.mu", 0.5), ("train.weighted", False)]
    )
    exp = prepare(cfg)
    trainer, handler = exp.trainer(exp.model), exp.handler()
    assert trainer.mu == 0.5 and handler.weighted is False
    assert main(["run", str(small_config), "--algorithm", "fedprox", "--set", 'algorithm.mu="x"']) == 2
    assert "algorithm.mu: expected float like the default 0.01, got 'x'" in capsys.readouterr().err
    assert main(["run", str(small_config), "--algorithm", "fedasync"]) == 2
    assert "'fedasync' is asynchronous" in capsys.readouterr().err


def _write_idx(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_files_in_torchvisions_layout(tmp_path, small_config):
    g = np.random.default_rng(0)
    raw = tmp_path / "vision" / "MNIST" / "raw"
    for prefix, n in (("train", 200), ("t10k", 50)):
        labels = g.integers(0, 10, n)
        images = (labels[:, None, None] * 25 + g.integers(0, 5, (n, 28, 28))).astype(np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    out = tmp_path / "run"
    _run(
        small_config,
        "--out",
        out,
        "--data",
        "mnist",
        "--set",
        f"data.path={tmp_path / 'vision'}",
        "--model",
        "cnn",
        "--clients",
        10,
        "--rounds",
        1,
    )
    assert load_model(out)["features.0.weight"].shape == (16, 1, 3, 3)

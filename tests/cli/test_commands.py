from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fastfl.cli import main
from fastfl.utils.dataset.leaf import synthetic_tree
from tests.cli.conftest import assert_same_model, load_model
from tests.integration._procs import ROOT, env


def _fastfl(*argv, timeout=200) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "fastfl", *map(str, argv)]
    return subprocess.run(
        cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.distributed
@pytest.mark.timeout(240)
def test_processes_2_equals_single_process_run(tmp_path, small_config):
    assert main(["run", str(small_config), "--out", str(tmp_path / "one"), "--quiet"]) == 0
    done = _fastfl("run", small_config, "--out", tmp_path / "two", "--processes", 2, "--timeout", 60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 3/3" in done.stdout
    assert_same_model(load_model(tmp_path / "one"), load_model(tmp_path / "two"))
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["rounds"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["rounds"]
    assert [r["accuracy"] for r in one] == [r["accuracy"] for r in two]
    assert all(r["bytes_sent"] > 0 for r in two)


def test_torchrun_lines_for_several_machines(tmp_path, small_config, capsys):
    argv = [
        "run",
        str(small_config),
        "--out",
        str(tmp_path / "run"),
        "--processes",
        "4",
        "--torchrun-nodes",
        "2",
        "--master-addr",
        "10.0.0.1",
        "--master-port",
        "29400",
    ]
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("torchrun")]
    assert len(lines) == 2
    assert (
        "--nnodes=2 --node-rank=1 --nproc-per-node=4 --master-addr=10.0.0.1 --master-port=29400" in lines[1]
    )
    assert lines[0].endswith("--from-env") and "-m fastfl run" in lines[0]


def test_more_client_ranks_than_clients_refused(tmp_path, small_config, capsys):
    argv = ["run", str(small_config), "--out", str(tmp_path / "o"), "--processes", "4", "--clients", "2"]
    assert main(argv) == 2
    assert "3 client ranks but only 2 clients" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_checkpoints_refused_with_processes(tmp_path, small_config, capsys):
    argv = [
        "run",
        str(small_config),
        "--out",
        str(tmp_path / "o"),
        "--processes",
        "2",
        "--checkpoint-every",
        "1",
    ]
    assert main(argv) == 2
    assert "checkpoints are for standalone runs" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_data_partition_writes_split_report_and_plot(tmp_path, capsys):
    out = tmp_path / "part"
    argv = [
        "data",
        "partition",
        "--data",
        "digits",
        "--scheme",
        "noniid-labeldir",
        "--clients",
        "6",
        "--dir-alpha",
        "0.3",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    split = json.loads((out / "partition.json").read_text())
    assert sorted(split) == [str(i) for i in range(6)]
    indices = sorted(i for s in split.values() for i in s)
    assert len(indices) == len(set(indices)) > 1000
    assert (out / "partition.csv").read_text().count("\n") >= 6
    assert (out / "partition.png").stat().st_size > 0
    assert "total" in capsys.readouterr().out


def test_data_leaf_subcommand_and_its_alias(tmp_path, capsys):
    from fastfl.datasets import main as alias

    synthetic_tree(tmp_path, "femnist", num_users=3, train_samples=4, test_samples=2, seed=1)
    assert main(["data", "leaf", "--name", "femnist", "--root", str(tmp_path), "--split", "train"]) == 0
    assert "femnist train: 3 clients, 12 samples" in capsys.readouterr().out
    assert alias(["leaf", "--name", "femnist", "--root", str(tmp_path), "--split", "test"]) == 0
    assert "femnist test: 3 clients, 6 samples" in capsys.readouterr().out


def test_leaf_folder_as_run_data(tmp_path, small_config):
    synthetic_tree(tmp_path, "synthetic", num_users=4, train_samples=20, test_samples=5, seed=3)
    out = tmp_path / "run"
    argv = [
        "run",
        str(small_config),
        "--out",
        str(out),
        "--data",
        "leaf",
        "--set",
        f"data.path={tmp_path}",
        "--set",
        "data.leaf_name=synthetic",
        "--set",
        "partition.clients=4",
        "--rounds",
        "1",
        "--quiet",
    ]
    assert main(argv) == 0
    rows = json.loads((out / "metrics.json").read_text())["rounds"]
    assert rows[0]["clients"] == 4

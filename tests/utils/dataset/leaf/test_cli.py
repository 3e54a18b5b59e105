from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastfl.datasets import main
from fastfl.utils.dataset.leaf import cache_path, synthetic_tree

REPO = Path(__file__).resolve().parents[4]


def test_cli_builds_cache_and_prints_per_client_stats(tmp_path, capsys):
    synthetic_tree(tmp_path, "femnist", num_users=3, train_samples=4, test_samples=2, seed=1)
    assert main(["leaf", "--name", "femnist", "--root", str(tmp_path), "--show", "0", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "femnist train: 3 clients, 12 samples (per client min 4 / mean 4.0 / max 4)" in out
    assert "femnist test: 3 clients, 6 samples" in out
    assert "built in" in out and "verified 3 clients, 12 samples: checksums match" in out
    assert "f_00002" in out
    assert cache_path(tmp_path, "femnist", "train").is_file()
    assert (
        main(["leaf", "--name", "femnist", "--root", str(tmp_path), "--split", "train", "--show", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "opened in" in out and "... 2 more" in out and "test:" not in out


def test_cli_missing_data_explains_where_files_go(tmp_path, capsys):
    assert main(["leaf", "--name", "shakespeare", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "shakespeare" / "data" / "train") in err and "preprocess.sh" in err


def test_cli_malformed_json_exits_2(tmp_path, capsys):
    bad = tmp_path / "synthetic" / "data" / "train" / "x.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{")
    assert main(["leaf", "--name", "synthetic", "--root", str(tmp_path)]) == 2
    assert "x.json: not valid JSON" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    synthetic_tree(tmp_path, "sent140", num_users=2, seed=2)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "fastfl.datasets", "leaf", "--name", "sent140", "--root", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "sent140 train: 2 clients" in done.stdout and "vocabulary" in done.stdout

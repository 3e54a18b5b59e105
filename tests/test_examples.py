"""Smoke tests of the examples that run in-process, and of the launcher's supervision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def test_standalone_fedavg_ten_rounds_learns_and_writes_results(tmp_path, capsys):
    import standalone_fedavg

    rows = standalone_fedavg.main(["--out", str(tmp_path / "m"), "--save", str(tmp_path / "model.pt")])
    assert [r["round"] for r in rows] == list(range(1, 11))
    assert all(r["clients"] == 10 for r in rows)
    assert rows[-1]["accuracy"] >= 0.75
    printed = capsys.readouterr().out
    assert "round 10/10  clients  10" in printed
    saved = json.loads((tmp_path / "m.json").read_text())["rounds"]
    assert saved == rows
    header = (tmp_path / "m.csv").read_text().splitlines()[0]
    assert header == "round,clients,loss,accuracy,seconds"
    pytest.importorskip("matplotlib")
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_standalone_synthetic_data_option(tmp_path):
    import standalone_fedavg

    rows = standalone_fedavg.main(["--data", "synthetic", "--rounds", "1", "--out", str(tmp_path / "m")])
    assert len(rows) == 1 and 0.0 <= rows[0]["accuracy"] <= 1.0


def _launch(tmp_path, *scripts, extra=()):
    files = []
    for i, body in enumerate(scripts):
        f = tmp_path / f"p{i}.py"
        f.write_text(body)
        files.append(f)
    code = "import sys; from fastfl.launch import launch; sys.exit(launch([[sys.executable, f] for f in sys.argv[1:]], grace=1{}))"
    cmd = [sys.executable, "-c", code.format("".join(extra)), *map(str, files)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    return proc, time.monotonic() - start


def test_launcher_stops_everything_when_one_process_fails(tmp_path):
    marker = tmp_path / "alive"
    grandchild = f"import time, pathlib; time.sleep(3); pathlib.Path({str(marker)!r}).write_text('x')"
    child = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {grandchild!r}])\ntime.sleep(30)\n"
    proc, _ = _launch(tmp_path, child, "import sys, time; time.sleep(1); sys.exit(3)")
    assert proc.returncode == 3
    assert "process 1 exited with 3" in proc.stderr
    time.sleep(4)
    assert not marker.exists(), "a grandchild survived the launcher's cleanup"


def test_launcher_timeout_and_success(tmp_path):
    proc, _ = _launch(tmp_path, "import time; time.sleep(30)", extra=(", timeout=1",))
    assert proc.returncode == 124 and "timeout" in proc.stderr
    ok, _ = _launch(tmp_path, "pass", "print('hi')")
    assert ok.returncode == 0 and "hi" in ok.stdout


def test_launcher_cli_appends_rank_world_size_and_port(tmp_path):
    script = tmp_path / "show.py"
    out = tmp_path / "ranks"
    script.write_text(f"import sys; open({str(out)!r} + sys.argv[2], 'w').write(' '.join(sys.argv[1:]))")
    proc = subprocess.run(
        [sys.executable, "-m", "fastfl.launch", "--nprocs", "2", str(script)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    first = (tmp_path / "ranks0").read_text().split()
    assert first[:4] == ["--rank", "0", "--world-size", "2"] and first[4] == "--port"
    assert (tmp_path / "ranks1").read_text().split()[1] == "1"


def test_launcher_ctrl_c_stops_all_processes(tmp_path):
    import signal

    pidfile = tmp_path / "pid"
    child = tmp_path / "child.py"
    child.write_text(
        f"import os, time, pathlib; pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid())); time.sleep(60)"
    )
    code = f"import sys; from fastfl.launch import launch; sys.exit(launch([[sys.executable, {str(child)!r}]] * 1, grace=1))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pidfile.exists(), "the child never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)

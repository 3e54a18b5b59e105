"""SIGTERM and SIGHUP to `python -m fastfl.launch` stop every rank and its children, like Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from tests.integration.faults._harness import alive, orphans, spawn, wait_all

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(90)]

RANK = """
import pathlib, subprocess, sys, time
out = pathlib.Path(sys.argv[1])
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
(out / ("pid-rank" + sys.argv[sys.argv.index("--rank") + 1])).write_text(f"{child.pid}")
time.sleep(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_stops_every_rank_and_child(tmp_path, sig):
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    launcher = spawn([sys.executable, "-m", "fastfl.launch", "--nprocs", "2", str(script), str(tmp_path)])
    end = time.monotonic() + 30
    while len(list(tmp_path.glob("pid-rank*"))) < 2 and time.monotonic() < end:
        time.sleep(0.1)
    started = [int(p.read_text()) for p in tmp_path.glob("pid-rank*")]
    assert len(started) == 2, "the ranks did not start"
    launcher.send_signal(sig)
    ((code, out),) = wait_all([launcher], deadline=20)
    assert code == 128 + sig, out
    assert f"interrupted by {signal.Signals(sig).name}; stopping all processes" in out
    assert not orphans([launcher]), "a rank or a rank's child outlived the launcher"
    assert not [pid for pid in started if alive(pid)], "a rank's child survived"

"""Measure how long each failure takes to be detected with default settings (docs/reliability.md).

    PYTHONPATH=. python -m tests.integration.faults.measure [repeats]

Each case runs real processes over gloo on 127.0.0.1 with fastfl's default network timeout
(1800 s) and default manager settings; the victim prints a timestamp right before it is killed,
the detecting process logs one when it reports the loss. Prints a Markdown table (median and
maximum over the repeats, in seconds).
"""

from __future__ import annotations

import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastfl.core.communicator.transport import DEFAULT_TIMEOUT
from tests.integration.faults import scenarios as sc
from tests.integration.faults._harness import orphans, spawn, wait_all, worker


def _stamp(text: str, marker: str) -> float:
    found = re.search(rf"^(\d+\.\d+) .*{marker}", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no line with {marker!r} in:\n{text[-2000:]}")
    return float(found.group(1))


def _run(procs: list[sc.Proc], logs: Path) -> sc.Outcome:
    popen = [worker(p.role, {**p.args, "timeout": DEFAULT_TIMEOUT}, logs / f"{p.name}.log") for p in procs]
    results = wait_all(popen, sc.DEADLINE)
    return sc.Outcome(procs, [c for c, _ in results], [o for _, o in results], orphans(popen))


def client_killed(logs: Path) -> float:
    out = _run(sc.flat("sgd", 3, 2, {"call": 2, "phase": "after"}), logs)
    return _stamp(out.output("server"), "lost rank 2") - _stamp(out.output("client2"), "DIE")


def server_killed(logs: Path) -> float:
    procs = sc.flat("sgd", 2)
    procs[0].args["die"] = {"round": 2}
    out = _run(procs, logs)
    return _stamp(out.output("client1"), "FAILED PeerLostError") - _stamp(out.output("server"), "DIE")


def scheduler_killed(logs: Path) -> float:
    out = _run(sc.hierarchical(logs, victim=(2, 0), die={"call": 2}), logs)
    return _stamp(out.output("top"), "lost rank 2") - _stamp(out.output("top"), "KILL")


def launcher_terminated(logs: Path) -> float:
    script = logs / "rank.py"
    script.write_text("import time\ntime.sleep(120)\n")
    launcher = spawn([sys.executable, "-m", "fastfl.launch", "--nprocs", "3", str(script)])
    time.sleep(2.0)
    sent = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    launcher.wait(30)
    took = time.monotonic() - sent
    assert not orphans([launcher]), "a rank outlived the launcher"
    return took


CASES = {
    "a client process dies (sync round): the server logs `lost rank R`": client_killed,
    "the server process dies: a client's receive raises PeerLostError(0)": server_killed,
    "a scheduler process dies: the top server logs `lost rank R`": scheduler_killed,
    "SIGTERM to `python -m fastfl.launch`: every rank stopped, launcher exits 143": launcher_terminated,
}


def main(repeats: int = 5) -> None:
    print("| failure | median s | max s |\n|---|---|---|")
    for name, case in CASES.items():
        times = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as logs:
                times.append(case(Path(logs)))
        print(f"| {name} | {statistics.median(times):.2f} | {max(times):.2f} |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

"""Start every process of a scenario, supervise them, and clean up on failure, timeout or Ctrl-C.

    python -m fastfl.launch --nprocs 3 examples/cross_process.py --rounds 3

runs ``python examples/cross_process.py --rounds 3 --rank R --world-size 3 --port P`` for
R = 0..2 with one free port P. Each process gets its own process group, so stopping the run
also stops the processes they started (for example a Scheduler's connectors).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["free_port", "launch", "main"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(procs: Sequence[subprocess.Popen], grace: float) -> None:
    """SIGTERM each process group still running, then SIGKILL what is left after `grace` s."""
    for p in procs:
        if p.poll() is None:
            _signal_group(p, signal.SIGTERM)
    end = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(end - time.monotonic(), 0.01))
    for p in procs:
        _signal_group(p, signal.SIGKILL)  # also reaps grandchildren of exited leaders
        if p.poll() is None:
            p.wait()


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, sig)


def launch(
    commands: Sequence[Sequence[str]],
    *,
    timeout: float | None = None,
    fail_fast: bool = True,
    grace: float = 5.0,
    env: dict[str, str] | None = None,
) -> int:
    """Run the commands as processes and wait for all of them.

    Args:
        commands: one argv list per process.
        timeout: seconds the whole run may take; then every process is stopped.
        fail_fast: stop all processes as soon as one exits with an error.
        grace: seconds between SIGTERM and SIGKILL when stopping.
        env: the environment of the processes (default: this one's).

    Returns:
        0 when every process exited with 0; otherwise the first non-zero exit code (124 for a
        timeout, 130 for Ctrl-C).
    """
    if not commands:
        raise ValueError("commands is empty; give at least one process to start")
    procs = [subprocess.Popen(list(cmd), env=env, start_new_session=True) for cmd in commands]
    end = float("inf") if timeout is None else time.monotonic() + timeout
    status = 0
    try:
        while [p.poll() for p in procs].count(None):  # poll every process, not just the first
            failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode not in (None, 0)]
            if failed and status == 0:
                status = failed[0][1] if failed[0][1] > 0 else 1
                print(f"fastfl.launch: process {failed[0][0]} exited with {failed[0][1]}", file=sys.stderr)
                if fail_fast:
                    break
            if time.monotonic() > end:
                print(f"fastfl.launch: timeout after {timeout:g} s; stopping all processes", file=sys.stderr)
                status = 124
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("fastfl.launch: interrupted; stopping all processes", file=sys.stderr)
        status = 130
    finally:
        _stop(procs, grace)
    if status == 0:
        codes = [p.returncode for p in procs]
        bad = [(i, c) for i, c in enumerate(codes) if c != 0]
        if bad:
            print(f"fastfl.launch: process {bad[0][0]} exited with {bad[0][1]}", file=sys.stderr)
            status = bad[0][1] if bad[0][1] > 0 else 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run a script once per rank with --rank, --world-size and --port appended."""
    parser = argparse.ArgumentParser(prog="python -m fastfl.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--nprocs", type=int, required=True, help="processes (world size), rank 0 first")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before everything is stopped")
    parser.add_argument("--port", type=int, default=None, help="rendezvous port (default: a free one)")
    parser.add_argument("script", help="the Python script every rank runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    opts = parser.parse_args(argv)
    if opts.nprocs < 1:
        parser.error("--nprocs must be >= 1")
    port = opts.port if opts.port is not None else free_port()
    world = ["--world-size", str(opts.nprocs), "--port", str(port)]
    commands = [
        [sys.executable, opts.script, *opts.args, "--rank", str(r), *world] for r in range(opts.nprocs)
    ]
    return launch(commands, timeout=opts.timeout)


if __name__ == "__main__":
    sys.exit(main())

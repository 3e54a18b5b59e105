"""Start every process of a scenario, supervise them, and clean up on failure, timeout or Ctrl-C.

    python -m fastfl.launch --nprocs 3 examples/cross_process.py --rounds 3

runs ``python examples/cross_process.py --rounds 3 --rank R --world-size 3 --port P`` for
R = 0..2 with one free port P. Each process gets its own process group, so stopping the run
also stops the processes they started (for example a Scheduler's connectors). Ctrl-C, SIGTERM
and SIGHUP (what `kill`, `timeout`, systemd, Slurm and CI send) stop every process the same way,
and the launcher exits with 128 + the signal's number. Every run gets its own identity in
FASTFL_RUN_ID (unless one is set), so its processes never join another run on the same port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

from fastfl.errors import LaunchError

__all__ = ["STOP_SIGNALS", "free_port", "launch", "main"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(received: list[int]) -> Callable[[int, object], None]:
    """A signal handler that records the signal in `received` and raises KeyboardInterrupt."""

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    return handler


@contextlib.contextmanager
def _stop_signals(handler: object) -> Iterator[None]:
    """Install `handler` for the stop signals (main thread only), restoring the old ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


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
        timeout, 128 + the signal's number for Ctrl-C (130), SIGTERM (143) or SIGHUP (129)).
    """
    if not commands:
        raise LaunchError("commands is empty; give at least one process to start")
    procs: list[subprocess.Popen] = []
    status = 0
    received: list[int] = []
    with _stop_signals(_interrupt(received)):
        try:
            procs.extend(subprocess.Popen(list(cmd), env=env, start_new_session=True) for cmd in commands)
            status = _supervise(procs, timeout, fail_fast)
        except KeyboardInterrupt:
            signum = received[0] if received else signal.SIGINT
            name = signal.Signals(signum).name
            print(f"fastfl.launch: interrupted by {name}; stopping all processes", file=sys.stderr)
            status = 128 + signum
        finally:
            with _stop_signals(signal.SIG_IGN):  # a second signal must not cut the clean-up short
                _stop(procs, grace)
    if status == 0:
        codes = [p.returncode for p in procs]
        bad = [(i, c) for i, c in enumerate(codes) if c != 0]
        if bad:
            print(f"fastfl.launch: process {bad[0][0]} exited with {bad[0][1]}", file=sys.stderr)
            status = bad[0][1] if bad[0][1] > 0 else 1
    return status


def _supervise(procs: Sequence[subprocess.Popen], timeout: float | None, fail_fast: bool) -> int:
    """Wait for the processes; return 0, the first failure's exit code, or 124 on timeout."""
    end = float("inf") if timeout is None else time.monotonic() + timeout
    status = 0
    while [p.poll() for p in procs].count(None):  # poll every process, not just the first
        failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode not in (None, 0)]
        if failed and status == 0:
            status = failed[0][1] if failed[0][1] > 0 else 1
            print(f"fastfl.launch: process {failed[0][0]} exited with {failed[0][1]}", file=sys.stderr)
            if fail_fast:
                return status
        if time.monotonic() > end:
            print(f"fastfl.launch: timeout after {timeout:g} s; stopping all processes", file=sys.stderr)
            return 124
        time.sleep(0.05)
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
    env = dict(os.environ)
    env.setdefault("FASTFL_RUN_ID", uuid.uuid4().hex)
    return launch(commands, timeout=opts.timeout, env=env)


if __name__ == "__main__":
    sys.exit(main())

"""Helpers of the fault tests: start processes in their own session, wait with deadlines, find orphans.

Role processes come from a forkserver that has torch and fastfl imported already (a fresh
interpreter costs over a second of CPU per process on this project's 2-core CI). Each one starts
its own session, so the processes it starts can be found (and stopped) through it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration._procs import ROOT, env

PRELOAD = ["torch", "torch.distributed", "fastfl.core", "tests.integration.faults._roles"]
_ctx = mp.get_context("forkserver")
_ctx.set_forkserver_preload(PRELOAD)


def spawn(argv: list[str], **extra_env: str) -> subprocess.Popen:
    """Start a process in a new session (so its whole tree can be found and stopped), output captured."""
    e = env()
    e.update(extra_env)
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _role_entry(role: str, args: dict, log: str) -> None:
    os.setsid()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own stdout, until it ends
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    os.environ.update(args.pop("env", {}))
    from tests.integration.faults import _roles

    _roles.setup_logging()
    getattr(_roles, role)(args)


class Worker:
    """A role process from the forkserver, with Popen's wait/poll/kill/communicate/returncode."""

    def __init__(self, role: str, args: dict, log: Path):
        self.log = log
        log.write_text("")
        self.proc = _ctx.Process(target=_role_entry, args=(role, args, str(log)), name=role)
        self.proc.start()
        self.pid = self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.exitcode

    def poll(self) -> int | None:
        return self.proc.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            raise subprocess.TimeoutExpired(self.proc.name, timeout or 0)
        return self.proc.exitcode

    def kill(self) -> None:
        self.proc.kill()

    def communicate(self) -> tuple[str, None]:
        self.proc.join()
        return self.log.read_text(errors="replace"), None


def worker(role: str, args: dict, log: Path) -> Worker:
    """Run `tests.integration.faults._roles.ROLE(args)` in its own session; output goes to `log`."""
    return Worker(role, args, log)


def wait_all(procs: list, deadline: float) -> list[tuple[int | None, str]]:
    """Wait up to `deadline` seconds in all; return (exit code or None if still running, output) each.

    Processes still running at the deadline are killed (with their session) after being recorded
    as None, so a test can assert that every process ended by itself.
    """
    end = time.monotonic() + deadline
    codes: list[int | None] = []
    for p in procs:
        try:
            p.wait(timeout=max(end - time.monotonic(), 0.01))
            codes.append(p.returncode)
        except subprocess.TimeoutExpired:
            codes.append(None)
    for p in procs:
        if codes[procs.index(p)] is None:
            kill_session(p)
    return [(c, p.communicate()[0]) for c, p in zip(codes, procs, strict=True)]


def kill_session(p) -> None:
    """SIGKILL every process of `p`'s session (p leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)
    if p.poll() is None:
        p.kill()
        p.wait()


def session_members(sid: int) -> list[int]:
    """The live processes (not zombies) whose session id is `sid` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            members.append(int(entry.name))
    return members


def orphans(procs: list, settle: float = 3.0) -> list[int]:
    """Processes left in the tests' sessions after their leaders ended (waits `settle` s for them)."""
    end = time.monotonic() + settle
    while True:
        left = [pid for p in procs for pid in session_members(p.pid)]
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

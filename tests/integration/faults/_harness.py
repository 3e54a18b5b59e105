"""Helpers of the fault tests: start processes in their own session, wait with deadlines, find orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration._procs import ROOT, env


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


def worker(role: str, args: dict, **extra_env: str) -> subprocess.Popen:
    """`python -m tests.integration.faults._roles ROLE JSON` in its own session."""
    import json

    return spawn(
        [sys.executable, "-m", "tests.integration.faults._roles", role, json.dumps(args)], **extra_env
    )


def wait_all(procs: list[subprocess.Popen], deadline: float) -> list[tuple[int | None, str]]:
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
        kill_session(p)
    return [(c, p.communicate()[0]) for c, p in zip(codes, procs, strict=True)]


def kill_session(p: subprocess.Popen) -> None:
    """SIGKILL every process of `p`'s session (p started with start_new_session=True)."""
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


def orphans(procs: list[subprocess.Popen], settle: float = 3.0) -> list[int]:
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

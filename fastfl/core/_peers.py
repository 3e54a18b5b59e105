"""Peer liveness over gloo: learn within milliseconds that a peer process's connection closed.

gloo wakes a pending receive *from one rank* when that rank's connection closes, but not a
receive from any rank, so a server blocked in an any-source receive never hears of a dead
client. For each watched peer, one daemon thread waits on a receive with `LIVENESS_TAG`, a tag
that nothing ever sends on: the wait ends only when that peer's connection closes (its process
exited or was killed), and the thread then reports the rank. Packages travel on tag 0 and gloo's
collectives on prefixed slots, so the watch takes no traffic from anyone.

The wait's deadline is a year: gloo turns a timed-out receive into an error on every connection
of the process group, so a watch must never time out while the run is alive. `release` uses
exactly that on purpose when the network closes: a 1 ms receive on `RELEASE_TAG` times out and
wakes every pending wait of the process (watches, and a receive thread's any-source receive), so
those threads end before the interpreter does (a thread that wakes in C++ during interpreter
shutdown aborts the process). Only gloo is watched (nccl and mpi have no per-pair close event
that torch exposes).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["LIVENESS_TAG", "RELEASE_TAG", "release", "track", "watch"]

LIVENESS_TAG = 0x4C56  # "LV"; any tag other than 0 (packages) would do
RELEASE_TAG = 0x4C57
_FOREVER = timedelta(days=365)
_INSTANT = timedelta(milliseconds=1)
_JOIN_SECONDS = 2.0
_CLOSED = ("closed by peer", "connection reset", "broken pipe", "connection refused")
_LOG = logging.getLogger("fastfl.network")
_threads: list[threading.Thread] = []  # threads that block in gloo waits: released at close
_guard = threading.Lock()


def watch(ranks: Iterable[int], on_lost: Callable[[int, str], None]) -> list[threading.Thread]:
    """Call `on_lost(rank, reason)` from a daemon thread when a peer's connection closes.

    Args:
        ranks: the peers to watch (never this process's own rank).
        on_lost: called at most once per rank, from that rank's watch thread.

    Returns:
        The watch threads (empty when the backend is not gloo).
    """
    if not dist.is_initialized() or dist.get_backend() != "gloo":
        _LOG.debug("peer liveness is watched over gloo only; not watching")
        return []
    pg = dist.group.WORLD
    threads = []
    for rank in ranks:
        work = pg.recv([torch.empty(1, dtype=torch.uint8)], rank, LIVENESS_TAG)
        thread = threading.Thread(
            target=_wait, args=(work, rank, on_lost), name=f"fastfl-peer-{rank}", daemon=True
        )
        thread.start()
        threads.append(thread)
    for thread in threads:
        track(thread)
    return threads


def track(thread: threading.Thread) -> None:
    """Have `release` wake and join `thread` (one that waits in gloo) when the network closes."""
    with _guard:
        _threads[:] = [t for t in _threads if t.is_alive()]
        _threads.append(thread)


def release() -> None:
    """Wake every tracked thread's pending gloo wait and join the threads (bounded).

    This breaks the process group (every connection of it reports an error), so call it only
    when the network is being closed. Does nothing when no tracked thread is alive.
    """
    with _guard:
        alive = [t for t in _threads if t.is_alive()]
        _threads.clear()
    if not alive or not dist.is_initialized():
        return
    work = dist.group.WORLD.recv_anysource([torch.empty(1, dtype=torch.uint8)], RELEASE_TAG)
    try:
        work.wait(timeout=_INSTANT)
    except RuntimeError:
        pass  # the timeout is the point: it wakes all the pending waits
    else:
        _LOG.warning("a package arrived on the release tag %d; ignored", RELEASE_TAG)
    end = time.monotonic() + _JOIN_SECONDS
    for thread in alive:
        thread.join(max(end - time.monotonic(), 0.0))
    stuck = [t.name for t in alive if t.is_alive()]
    if stuck:
        _LOG.warning("threads still waiting on the network after release: %s", ", ".join(stuck))


atexit.register(release)  # for a process that exits without closing its network


def _wait(work: dist.Work, rank: int, on_lost: Callable[[int, str], None]) -> None:
    try:
        work.wait(timeout=_FOREVER)
    except RuntimeError as err:
        text = str(err)
        low = text.lower()
        if "timeout" not in low and "timed out" not in low and any(word in low for word in _CLOSED):
            on_lost(rank, "its connection closed (the process exited or crashed)")
        else:  # the whole group failed (e.g. a timed-out wait elsewhere): the waits report that
            _LOG.debug("stopped watching rank %d: %s", rank, text)
        return
    _LOG.warning("rank %d sent a message on the liveness tag %d; no longer watched", rank, LIVENESS_TAG)

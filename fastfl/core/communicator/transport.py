"""Point-to-point transfers over torch.distributed with a deadline on every wait.

Every wait goes through `Work.wait(timeout=...)`. Gloo gives no way to cancel a pending receive,
and after a timed-out wait it closes the pair (or leaves an orphaned any-source receive that
swallows the next message), so a timeout makes the process group unusable: this module then
refuses further transfers with an error that says so, instead of losing or mixing up messages.
A peer that disconnects makes waits on it fail at once with `CommunicationError`; receives from
other peers keep working.

Sends to one destination are serialised by a per-destination lock (a package is two or three
transfers that must not interleave with another thread's), and receives by one lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

from fastfl.errors import CommunicationError, CommunicationTimeout, PeerLostError

DEFAULT_TIMEOUT = 1800.0

recv_lock = threading.RLock()
_locks_guard = threading.Lock()
_send_locks: dict[int, threading.RLock] = {}
_broken: dict[int, str] = {}
_groups: dict[int, Group] = {}


def send_lock(dst: int) -> threading.RLock:
    """The lock that keeps the transfers of one package to `dst` together."""
    lock = _send_locks.get(dst)
    if lock is not None:
        return lock
    with _locks_guard:
        lock = _send_locks.get(dst)
        if lock is None:
            lock = _send_locks[dst] = threading.RLock()
        return lock


def _group_key() -> int:
    return id(dist.group.WORLD)


class Group(NamedTuple):
    """This process's rank, the world size, the device packages travel on, and the process group."""

    rank: int
    world_size: int
    device: torch.device
    pg: dist.ProcessGroup | None = None


def check_usable() -> Group:
    """Return the default group's facts; raise CommunicationError unless it is up and not broken."""
    if not (dist.is_available() and dist.is_initialized()):
        raise CommunicationError(
            "torch.distributed is not initialized; call DistNetwork.init_network_connection() first"
        )
    key = _group_key()
    if key in _groups and key not in _broken:
        return _groups[key]
    reason = _broken.get(key)
    if reason is not None:
        raise CommunicationError(
            f"the network is unusable after an earlier failure ({reason}); "
            "call close_network_connection() and init_network_connection() again"
        )
    nccl = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    _groups.clear()
    _groups[key] = Group(dist.get_rank(), dist.get_world_size(), device, dist.group.WORLD)
    return _groups[key]


def forget_group() -> None:
    """Drop the broken mark of the current group (call before destroying it)."""
    if dist.is_available() and dist.is_initialized():
        _broken.pop(_group_key(), None)
        _groups.pop(_group_key(), None)


def send(tensors: Sequence[Tensor], dst: int, timeout: float, what: str) -> None:
    """Send tensors to `dst` in order (all posted at once, then each waited for).

    The caller has checked the group with `check_usable()`.
    """
    pg = _pg()
    try:
        works = [pg.send([t], dst, 0) for t in tensors]
    except RuntimeError as err:
        raise _translate(err, what, dst, timeout) from err
    for work in works:
        wait(work, timeout, what, dst)


def recv(buf: Tensor, src: int | None, timeout: float, what: str) -> int:
    """Receive into `buf` from `src` (None: any rank); return the rank it came from.

    The caller has checked the group with `check_usable()`.
    """
    pg = _pg()
    try:
        work = pg.recv_anysource([buf], 0) if src is None else pg.recv([buf], src, 0)
    except RuntimeError as err:
        raise _translate(err, what, src, timeout) from err
    wait(work, timeout, what, src)
    return src if src is not None else int(work._source_rank())


def _pg() -> dist.ProcessGroup:
    """The default process group, called directly: torch's isend/irecv wrappers only re-check it."""
    group = _groups.get(_group_key())
    return group.pg if group is not None and group.pg is not None else dist.group.WORLD


def wait(work: dist.Work, timeout: float, what: str, peer: int | None) -> None:
    """Wait for one transfer, translating torch's errors into fastfl's."""
    try:
        work.wait(timeout=_delta(timeout))
    except RuntimeError as err:
        raise _translate(err, what, peer, timeout) from err


@functools.lru_cache(maxsize=16)
def _delta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _translate(err: RuntimeError, what: str, peer: int | None, timeout: float) -> CommunicationError:
    text = str(err)
    who = "any rank" if peer is None else f"rank {peer}"
    low = text.lower()
    if "timed out" in low or "timeout" in low:
        _broken[_group_key()] = f"{what} timed out"
        return CommunicationTimeout(
            f"{what}: nothing from {who} within {timeout:g} s (timeout). torch.distributed cannot cancel "
            "the pending transfer, so this network is now unusable: close it and initialize it again"
        )
    if "closed" in low or "reset" in low or "broken pipe" in low:
        text = f"{what}: the connection to {who} was closed (did that process exit or crash?)"
        return CommunicationError(text) if peer is None else PeerLostError(peer, text)
    return CommunicationError(f"{what} with {who} failed: {text}")

"""The rendezvous of a DistNetwork: a TCP store with a deadline, and a run identity checked there.

torch's TCP store client waits without a deadline for the answer to its first message, so a
process that is not a store but accepts connections on the port (another program, a stuck
process) would keep a non-zero rank waiting forever. Here the store is created on a helper
thread and abandoned, with `CommunicationTimeout`, when the timeout passes.

Each run has an identity: the `run_id` argument, else the FASTFL_RUN_ID environment variable
(`python -m fastfl.launch` sets one per run), else one that rank 0 makes up. Rank 0 publishes its
identity and world size in the store; every other rank checks them against its own (a rank
without an identity accepts rank 0's) and claims its rank number, so a process never joins
another run: a different identity, a different world size or a rank claimed twice (two runs on
one port) is a `RunMismatchError` that says which.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import torch.distributed as dist

from fastfl.errors import CommunicationError, CommunicationTimeout, RunMismatchError

__all__ = ["RUN_ID_ENV", "join", "join_error"]

RUN_ID_ENV = "FASTFL_RUN_ID"
_RUN_KEY = "fastfl/run"
_RANK_KEY = "fastfl/rank/"


def join(ip: str, port: int, world_size: int, rank: int, timeout: float, run_id: str | None) -> dist.Store:
    """Open the run's store at ip:port (rank 0 hosts it), check the run's identity, claim `rank`.

    Raises:
        CommunicationTimeout: no store answered at ip:port within `timeout` seconds.
        CommunicationError: the store could not be created (e.g. rank 0's port is taken).
        RunMismatchError: the store belongs to another run, or this rank already joined it.
    """
    store = _open_store(ip, port, world_size, rank, timeout)
    where = f"{ip}:{port}"
    if rank == 0:
        store.set(_RUN_KEY, f"{run_id or uuid.uuid4().hex}|{world_size}")
    else:
        _check_run(store, where, world_size, run_id, timeout)
    if store.add(_RANK_KEY + str(rank), 1) != 1:
        raise RunMismatchError(
            f"rank {rank} has already joined the run at {where}: two processes were given rank {rank}, "
            "or two runs use the same port (give each run its own port, or set FASTFL_RUN_ID)"
        )
    return store


def join_error(
    err: Exception, store: dist.Store | None, where: str, world_size: int, timeout: float
) -> CommunicationError:
    """The error for a failed `init_process_group`: a timeout names the ranks that never came."""
    text = str(err).lower()
    if store is None or ("timeout" not in text and "timed out" not in text):
        return CommunicationError(f"could not join the process group at {where}: {_first_line(err)}")
    try:
        missing = [r for r in range(world_size) if not store.check([_RANK_KEY + str(r)])]
    except RuntimeError:  # rank 0 (the store's host) is gone
        missing = []
    who = f"rank(s) {missing} never joined" if missing else "not every rank completed it"
    return CommunicationTimeout(f"the rendezvous at {where} did not complete within {timeout:g} s: {who}")


def _check_run(store: dist.Store, where: str, world_size: int, run_id: str | None, timeout: float) -> None:
    try:
        text = store.get(_RUN_KEY).decode()
    except RuntimeError as err:
        raise CommunicationTimeout(
            f"the rendezvous at {where} did not say which run it hosts within {timeout:g} s ({err}); "
            "is rank 0 a fastfl process?"
        ) from err
    theirs, _, world = text.rpartition("|")
    if run_id is not None and theirs != run_id:
        raise RunMismatchError(
            f"the rendezvous at {where} hosts run {theirs!r}, but this process belongs to run {run_id!r}: "
            "two runs on one port? (each run needs its own port)"
        )
    if world != str(world_size):
        raise RunMismatchError(
            f"world size mismatch: rank 0 at {where} runs with world_size={world}, this process was "
            f"given world_size={world_size}"
        )


def _open_store(ip: str, port: int, world_size: int, rank: int, timeout: float) -> dist.Store:
    """A TCPStore (rank 0 hosts it), given up on after `timeout` seconds."""
    delta = timedelta(seconds=timeout)
    if rank == 0:
        try:
            return dist.TCPStore(ip, port, world_size, True, delta, wait_for_workers=False, multi_tenant=True)
        except RuntimeError as err:
            raise CommunicationError(
                f"rank 0 could not host the rendezvous at {ip}:{port} (is the port taken by another run or "
                f"program?): {_first_line(err)}"
            ) from err
    result: list[object] = []

    def connect() -> None:
        try:
            result.append(dist.TCPStore(ip, port, world_size, False, delta, multi_tenant=True))
        except RuntimeError as err:
            result.append(err)

    thread = threading.Thread(target=connect, name="fastfl-rendezvous", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:  # the thread stays blocked in torch; nothing else refers to it
        raise CommunicationTimeout(
            f"no fastfl rendezvous answered at {ip}:{port} within {timeout:g} s: something that is not a "
            "fastfl run accepts connections there, or rank 0 is stuck"
        )
    if isinstance(result[0], RuntimeError):
        raise CommunicationTimeout(
            f"could not reach the rendezvous at {ip}:{port} within {timeout:g} s (is rank 0 running, and is "
            f"that port its port?): {_first_line(result[0])}"
        ) from result[0]
    return result[0]  # type: ignore[return-value]


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__

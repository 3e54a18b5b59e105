"""Run a function in several real processes (one per rank) over gloo on 127.0.0.1, bounded in time."""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from fastfl.core.network import DistNetwork

PRELOAD = ["torch", "torch.distributed", "fastfl.core"]


def network(rank: int, world_size: int, port: int, **kwargs: Any) -> DistNetwork:
    """A DistNetwork for a test rank, with a short default timeout."""
    kwargs.setdefault("timeout", 30.0)
    return DistNetwork(("127.0.0.1", port), world_size, rank, **kwargs)


def _entry(target: Callable[..., Any], rank: int, world_size: int, port: int, args: tuple, out: Any) -> None:
    try:
        out.put((rank, True, target(rank, world_size, port, *args)))
    except Exception:  # noqa: BLE001 - the traceback goes to the parent, which raises it
        out.put((rank, False, traceback.format_exc()))


def run_ranks(
    target: Callable[..., Any],
    world_size: int,
    port: int,
    *args: Any,
    timeout: float = 60.0,
    silent: Iterable[int] = (),
) -> dict[int, Any]:
    """Run target(rank, world_size, port, *args) in `world_size` processes; return rank -> result.

    Ranks in `silent` are expected to die without reporting (e.g. a peer killed mid-message).
    Raises AssertionError with the rank's traceback if a rank raised, and TimeoutError (after
    killing every process) if the ranks do not finish within `timeout` seconds.
    """
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_entry, args=(target, rank, world_size, port, args, out), daemon=True)
        for rank in range(world_size)
    ]
    for p in procs:
        p.start()
    expected = set(range(world_size)) - set(silent)
    results: dict[int, tuple[bool, Any]] = {}
    try:
        while expected - results.keys():
            rank, ok, value = out.get(timeout=timeout)
            results[rank] = (ok, value)
    except queue.Empty:
        missing = sorted(expected - results.keys())
        raise TimeoutError(f"ranks {missing} did not finish within {timeout} s") from None
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
    failed = {r: v for r, (ok, v) in results.items() if not ok}
    if failed:
        raise AssertionError("\n".join(f"rank {r} failed:\n{tb}" for r, tb in sorted(failed.items())))
    return {r: v for r, (_, v) in results.items()}

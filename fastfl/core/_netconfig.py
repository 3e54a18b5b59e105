"""Checking DistNetwork's arguments: address, ranks, world size, run identity, torchrun's variables."""

from __future__ import annotations

import os

from fastfl.core import _rendezvous
from fastfl.errors import NetworkConfigError

__all__ = ["from_env", "int_arg", "port_arg", "run_id_arg"]


def from_env(
    address: tuple[str, int | str] | None, world_size: int | None, rank: int | None
) -> tuple[tuple[str, int | str], int, int]:
    """Fill the missing arguments from the variables torchrun sets."""
    needed = []
    if address is None:
        needed += ["MASTER_ADDR", "MASTER_PORT"]
    if world_size is None:
        needed.append("WORLD_SIZE")
    if rank is None:
        needed.append("RANK")
    missing = [k for k in needed if k not in os.environ]
    if missing:
        raise NetworkConfigError(
            f"DistNetwork needs address, world_size and rank, or the environment variables {', '.join(needed)} "
            f"(as torchrun sets them); missing: {', '.join(missing)}"
        )
    env = os.environ
    if address is None:
        address = (env["MASTER_ADDR"], env["MASTER_PORT"])
    world = int(env["WORLD_SIZE"]) if world_size is None else world_size
    return address, world, int(env["RANK"]) if rank is None else rank


def run_id_arg(run_id: object) -> str | None:
    """The run identity: the argument, else $FASTFL_RUN_ID, else None (rank 0 makes one up)."""
    if run_id is None:
        run_id = os.environ.get(_rendezvous.RUN_ID_ENV) or None
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip() or "|" in run_id):
        raise NetworkConfigError(f"run_id must be a non-empty string without '|', got {run_id!r}")
    return run_id


def port_arg(port: int | str) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise NetworkConfigError(f"address port must be an integer, got {port!r}") from None
    if not 0 < value < 65536:
        raise NetworkConfigError(f"address port must be in 1..65535, got {value}")
    return value


def int_arg(value: object, name: str, low: int) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise NetworkConfigError(f"{name} must be an integer, got {value!r}") from None
    if number < low or number != value:
        raise NetworkConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return number

"""Resumable runs: the complete simulation state, saved atomically and checked when loaded.

A checkpoint holds the global model, the handler's and the trainer's state (their C6
``state_dict()`` when they have one, plus every random generator they own and the trainer's
per-client shuffle counters), the global generators of Python, numpy and torch, the round counter
and the metrics so far. It is written to a temporary file, flushed, then renamed over
``checkpoint.pt``, so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastfl.errors import CheckpointError

__all__ = ["FORMAT", "config_digest", "load_checkpoint", "restore_state", "save_checkpoint", "snapshot"]

FORMAT = "fastfl-run-checkpoint/1"
FILE = "checkpoint.pt"


def config_digest(experiment: dict[str, Any]) -> str:
    """SHA-256 of the experiment-defining config values (canonical JSON)."""
    return hashlib.sha256(json.dumps(experiment, sort_keys=True).encode()).hexdigest()


def _rng_attributes(obj: Any) -> dict[str, Any]:
    """States of the random generators held directly by `obj` (by attribute name)."""
    states: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, random.Random):
            states[name] = ("python", _py_state(value.getstate()))
        elif isinstance(value, torch.Generator):
            states[name] = ("torch", value.get_state())
        elif isinstance(value, np.random.Generator):
            states[name] = ("numpy", json.dumps(value.bit_generator.state))
    return states


def _py_state(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _py_tuple(state: list) -> tuple:
    return (state[0], tuple(state[1]), state[2])


def _object_state(obj: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"rngs": _rng_attributes(obj)}
    if callable(getattr(obj, "state_dict", None)):
        state["state_dict"] = obj.state_dict()
    uses = getattr(obj, "_uses", None)  # SubsetSerialTrainer's per-client shuffle counters
    if isinstance(uses, dict):
        state["uses"] = {int(k): int(v) for k, v in uses.items()}
    return state


def _restore_object(obj: Any, state: dict[str, Any]) -> None:
    if "state_dict" in state:
        obj.load_state_dict(state["state_dict"])
    for name, (kind, value) in state["rngs"].items():
        target = getattr(obj, name, None)
        if kind == "python" and isinstance(target, random.Random):
            target.setstate(_py_tuple(value))
        elif kind == "torch" and isinstance(target, torch.Generator):
            target.set_state(value)
        elif kind == "numpy" and isinstance(target, np.random.Generator):
            target.bit_generator.state = json.loads(value)
        else:
            raise CheckpointError(
                f"checkpoint: {type(obj).__name__}.{name} is not a {kind} generator in this run"
            )
    if "uses" in state:
        obj._uses.clear()
        obj._uses.update(state["uses"])


def _numpy_global_state() -> str:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return json.dumps([name, keys.tolist(), int(pos), int(has_gauss), float(gauss)])


def snapshot(handler: Any, trainer: Any, rows: list[dict[str, Any]], digest: str) -> dict[str, Any]:
    """The complete state after ``handler.round`` rounds."""
    return {
        "format": FORMAT,
        "config": digest,
        "round": int(handler.round),
        "model": {k: v.detach().cpu().clone() for k, v in handler.model.state_dict().items()},
        "handler": _object_state(handler),
        "trainer": _object_state(trainer),
        "global_rng": {
            "python": _py_state(random.getstate()),
            "numpy": _numpy_global_state(),
            "torch": torch.get_rng_state(),
        },
        "rows": rows,
    }


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    """Write `state` to ``folder/checkpoint.pt`` atomically (temporary file, fsync, rename)."""
    path = folder / FILE
    tmp = folder / f".{FILE}.tmp-{os.getpid()}"
    try:
        with tmp.open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(folder: Path, digest: str) -> dict[str, Any]:
    """Read and check ``folder/checkpoint.pt``.

    Raises:
        CheckpointError: missing, unreadable or truncated file, another format, or a checkpoint
            of a different experiment (config digest).
    """
    path = folder / FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no checkpoint; the run needs run.checkpoint_every > 0 to be resumable"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a fastfl run checkpoint (expected format {FORMAT})")
    if state["config"] != digest:
        raise CheckpointError(
            f"{path}: the checkpoint belongs to a different experiment than {folder / 'config.toml'} "
            "(on resume only run.rounds, run.checkpoint_every, run.eval_every, run.tensorboard and "
            "partition.plot may change)"
        )
    return state


def restore_state(handler: Any, trainer: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Load a checkpoint into a fresh handler and trainer; return the metrics rows so far."""
    try:
        handler.model.load_state_dict(state["model"])
        _restore_object(handler, state["handler"])
        _restore_object(trainer, state["trainer"])
        handler.round = int(state["round"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"checkpoint does not match this run's model or algorithm: {err}") from err
    g = state["global_rng"]
    random.setstate(_py_tuple(g["python"]))
    np_state = json.loads(g["numpy"])
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(g["torch"])
    return list(state["rows"])

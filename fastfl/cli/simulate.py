"""A standalone simulation: every client in this process, one serial trainer, checkpoints, outputs."""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastfl.cli.checkpoint import config_digest, load_checkpoint, restore_state, save_checkpoint, snapshot
from fastfl.cli.experiment import Experiment
from fastfl.cli.outputs import RunLog
from fastfl.utils.progress import RoundReporter

__all__ = ["evaluate", "payload_bytes", "simulate"]

MODEL_FILE = "model.pt"


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset, batch: int = 4096) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in [0, 1] of `model` on `data`."""
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x, y = data.tensors[0], data.tensors[1]
    loss, correct = 0.0, 0
    for start in range(0, len(y), batch):
        xb, yb = x[start : start + batch].to(device), y[start : start + batch].to(device)
        logits = model(xb)
        loss += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += int((logits.argmax(1) == yb).sum())
    model.train(was_training)
    return loss / len(y), correct / len(y)


def payload_bytes(tensors: list[torch.Tensor]) -> int:
    """Bytes of a package's tensors."""
    return sum(t.numel() * t.element_size() for t in tensors)


def round_row(exp: Experiment, handler: Any, clients: int, seconds: float, sent: int, losses: Any) -> dict:
    """One round's metrics; loss and accuracy are NaN on rounds that are not evaluated."""
    run = exp.config["run"]
    evaluated = handler.round % run["eval_every"] == 0 or handler.round == run["rounds"]
    loss, acc = evaluate(handler.model, exp.data.test) if evaluated else (math.nan, math.nan)
    train_loss = float(sum(losses) / len(losses)) if losses else math.nan
    return {
        "round": handler.round,
        "clients": clients,
        "loss": loss,
        "accuracy": acc,
        "seconds": seconds,
        "bytes_sent": sent,
        "train_loss": train_loss,
    }


def simulate(
    exp: Experiment, folder: Path, *, resume: bool = False, stop_after: int | None = None, quiet: bool = False
) -> list[dict[str, Any]]:
    """Run (or continue) the experiment in this process; write everything into `folder`.

    Args:
        exp: the prepared experiment.
        folder: the run folder (config already written there).
        resume: continue from ``folder/checkpoint.pt``.
        stop_after: stop (with a checkpoint) once this many rounds are done, as if interrupted.
        quiet: print nothing.

    Returns:
        The metrics rows of every round so far.
    """
    cfg = exp.config
    handler = exp.handler()
    handler.client_num_in_total = exp.clients
    trainer = exp.trainer(copy.deepcopy(exp.model))
    digest = config_digest(cfg.experiment())
    rows: list[dict[str, Any]] = []
    if resume:
        rows = restore_state(handler, trainer, load_checkpoint(folder, digest))
    reporter = RoundReporter(
        cfg["run"]["rounds"],
        out=folder / "metrics",
        title=f"{exp.algorithm.name} on {cfg['data']['name']}",
        quiet=quiet,
    )
    reporter.rows = list(rows)
    log = RunLog(folder, cfg["run"]["tensorboard"], purge_step=handler.round + 1 if resume else None)
    every = cfg["run"]["checkpoint_every"]
    try:
        while not handler.if_stop and (stop_after is None or handler.round < stop_after):
            start = time.perf_counter()
            ids = handler.sample_clients()
            down = handler.downlink_package
            trainer.local_process(ids, down)
            up = trainer.uplink_package
            sent = payload_bytes(down) * len(ids) + payload_bytes(up)
            handler._update_global_model(up)
            row = round_row(
                exp, handler, len(ids), time.perf_counter() - start, sent, getattr(trainer, "losses", [])
            )
            reporter.record(**row)
            log.scalars(row)
            if every and (handler.round % every == 0 or handler.if_stop):
                save_checkpoint(folder, snapshot(handler, trainer, reporter.rows, digest))
        if stop_after is not None and not handler.if_stop:
            save_checkpoint(folder, snapshot(handler, trainer, reporter.rows, digest))
    finally:
        log.close()
        reporter.close()
    torch.save(handler.model.state_dict(), folder / MODEL_FILE)
    return reporter.rows

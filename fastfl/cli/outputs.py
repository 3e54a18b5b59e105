"""The run folder: resolved config (TOML), metrics (CSV, JSON, PNG), TensorBoard events, the model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fastfl.cli.config import Config

__all__ = ["RunLog", "run_dir", "to_toml", "write_config"]

CONFIG_FILE = "config.toml"


def run_dir(cfg: Config) -> Path:
    """The run folder: ``run.out``, or ``runs/<config name>``."""
    return Path(cfg["run"]["out"] or f"runs/{cfg.name}")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_toml(values: dict[str, dict[str, Any]]) -> str:
    """Write ``{section: {key: value}}`` as TOML (scalars, lists, inline tables)."""
    lines: list[str] = []
    for section, keys in values.items():
        lines.append(f"[{section}]")
        lines += [f"{json.dumps(k) if not k.isidentifier() else k} = {_value(v)}" for k, v in keys.items()]
        lines.append("")
    return "\n".join(lines)


def write_config(cfg: Config, folder: Path) -> Path:
    """Write the resolved config (every key, defaults included) as ``config.toml``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    path.write_text(
        f"# resolved config of run {cfg.name!r}; `fastfl run {path}` repeats it\n" + to_toml(cfg.values)
    )
    return path


class RunLog:
    """Per-round metrics to TensorBoard (when installed and enabled) alongside the RoundReporter."""

    def __init__(self, folder: Path, enabled: bool, purge_step: int | None = None):
        self.writer: Any = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=purge_step)

    def scalars(self, row: dict[str, Any]) -> None:
        """Write one round's loss, accuracy, round time and bytes sent."""
        if self.writer is None:
            return
        step = row["round"]
        for tag, key in (
            ("loss", "loss"),
            ("accuracy", "accuracy"),
            ("round_time", "seconds"),
            ("bytes_sent", "bytes_sent"),
            ("train_loss", "train_loss"),
        ):
            value = row.get(key)
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self.writer is not None:
            self.writer.close()

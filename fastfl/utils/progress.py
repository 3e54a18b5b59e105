"""Per-round progress and results: a printed line per round, a progress bar, CSV/JSON, a PNG plot."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["RoundReporter"]

FIELDS = ("round", "clients", "loss", "accuracy", "seconds")


class RoundReporter:
    """Report one line per round and keep the metrics.

    Each `record` prints ``round   3/10  clients  10  loss 0.4123  acc 88.52%  time 0.41s``;
    when the stream is a terminal and tqdm is installed, a tqdm progress bar stays under the
    lines. `close` writes the
    metrics to ``<out>.csv`` and ``<out>.json`` and, when matplotlib is installed, the accuracy
    and loss curves to ``<out>.png``.

    Args:
        total_rounds: the number of rounds expected (for the bar and the line's width).
        out: path prefix of the result files (None: keep the metrics in memory only).
        stream: where to print (default: sys.stdout at construction).
        bar: draw the progress bar (default: when `stream` is a terminal; needs tqdm).
        title: the plot's title.
        quiet: print nothing.
    """

    def __init__(
        self,
        total_rounds: int,
        out: str | Path | None = None,
        stream: TextIO | None = None,
        bar: bool | None = None,
        title: str = "",
        quiet: bool = False,
    ):
        self.total_rounds = int(total_rounds)
        self.out = Path(out) if out is not None else None
        self.stream = None if quiet else (stream if stream is not None else sys.stdout)
        stream = self.stream
        self.bar = bool(bar) if bar is not None else bool(stream is not None and stream.isatty())
        self.title = title
        self.rows: list[dict[str, Any]] = []
        self._tqdm: Any = None
        if self.bar and stream is not None:
            try:
                from tqdm import tqdm
            except ImportError:
                self.bar = False
            else:
                self._tqdm = tqdm(total=self.total_rounds, file=stream, unit="round", leave=True)

    def record(
        self, round: int, clients: int, loss: float, accuracy: float, seconds: float, **extra: Any
    ) -> None:
        """Keep one round's metrics (accuracy as a fraction in [0, 1]) and print its line."""
        row = {"round": int(round), "clients": int(clients), "loss": float(loss), "accuracy": float(accuracy)}
        row["seconds"] = float(seconds)
        row.update(extra)
        self.rows.append(row)
        if self.stream is None:
            return
        width = len(str(self.total_rounds))
        line = (
            f"round {round:>{width}}/{self.total_rounds}  clients {clients:>3}  loss {loss:.4f}  "
            f"acc {100 * accuracy:6.2f}%  time {seconds:.2f}s"
        )
        if self._tqdm is not None:
            self._tqdm.write(line, file=self.stream)
            self._tqdm.update(1)
            return
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> dict[str, Path]:
        """Finish the bar and write the result files; return them by kind ("csv", "json", "png")."""
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        if self.out is None:
            return {}
        self.out.parent.mkdir(parents=True, exist_ok=True)
        files = {"csv": self.out.with_suffix(".csv"), "json": self.out.with_suffix(".json")}
        keys = list(FIELDS) + sorted({k for row in self.rows for k in row} - set(FIELDS))
        with files["csv"].open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        files["json"].write_text(json.dumps({"title": self.title, "rounds": self.rows}, indent=1))
        png = self._plot(self.out.with_suffix(".png"))
        if png is not None:
            files["png"] = png
        return files

    def _plot(self, path: Path) -> Path | None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        rounds = [r["round"] for r in self.rows]
        fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.5))
        ax_acc.plot(rounds, [100 * r["accuracy"] for r in self.rows], marker="o")
        ax_acc.set(xlabel="round", ylabel="test accuracy (%)", title="accuracy")
        losses = [r["loss"] if math.isfinite(r["loss"]) else float("nan") for r in self.rows]
        ax_loss.plot(rounds, losses, marker="o", color="tab:red")
        ax_loss.set(xlabel="round", ylabel="test loss", title="loss")
        for ax in (ax_acc, ax_loss):
            ax.grid(alpha=0.3)
        if self.title:
            fig.suptitle(self.title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

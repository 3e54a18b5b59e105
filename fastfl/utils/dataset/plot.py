"""A picture of a partition: one horizontal bar per client, split by class (PNG, needs matplotlib)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastfl.utils.dataset._common import OptionalDependencyError, PartitionError, check_int
from fastfl.utils.dataset.stats import client_class_counts


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas, without pyplot (no global figure state, no display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise OptionalDependencyError(
            "plot_partition needs matplotlib: pip install matplotlib (or fastfl[plot])"
        ) from exc
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_partition(
    targets: Any,
    client_dict: dict[int, Any],
    path: str | os.PathLike[str],
    num_classes: int | None = None,
    max_clients: int = 50,
    normalize: bool = False,
    title: str | None = None,
) -> str:
    """Draw each client's class distribution as a stacked horizontal bar and save it as a PNG.

    Args:
        targets: class label of every sample.
        client_dict: ``{client_id: sample indices}``.
        path: where to write the PNG.
        num_classes: number of classes (default: largest label + 1).
        max_clients: draw only the first this many clients (by id), so that large partitions stay legible.
        normalize: draw class fractions instead of sample counts.
        title: figure title.

    Returns:
        The path written, as a string.
    """
    max_clients = check_int("max_clients", max_clients, 1)
    if not client_dict:
        raise PartitionError("client_dict is empty: there is nothing to plot")
    shown = dict(sorted(client_dict.items())[:max_clients])
    counts = client_class_counts(targets, shown, num_classes).astype(np.float64)
    if normalize:
        counts /= np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    num_shown, k = counts.shape
    fig = _figure(8.0, max(2.5, 0.22 * num_shown + 1.5))
    ax = fig.add_subplot(1, 1, 1)
    colors = _class_colors(k)
    rows = np.arange(num_shown)
    left = np.zeros(num_shown)
    for cls in range(k):
        label = f"class {cls}" if k <= 20 else None
        ax.barh(rows, counts[:, cls], left=left, color=colors[cls], label=label, height=0.8)
        left += counts[:, cls]
    ax.set_yticks(rows, [str(cid) for cid in shown])
    ax.invert_yaxis()
    ax.set_ylabel("client")
    ax.set_xlabel("fraction of samples" if normalize else "samples")
    ax.set_title(title or f"class distribution of {num_shown} of {len(client_dict)} clients")
    if k <= 20:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png", dpi=100)
    return os.fspath(path)


def _class_colors(num_classes: int) -> list[Any]:
    """Distinct colours: tab10/tab20 for few classes, a spread of a continuous colormap for many."""
    from matplotlib import colormaps

    if num_classes <= 10:
        return [colormaps["tab10"](i) for i in range(num_classes)]
    if num_classes <= 20:
        return [colormaps["tab20"](i) for i in range(num_classes)]
    cmap = colormaps["viridis"]
    return [cmap(i / max(num_classes - 1, 1)) for i in range(num_classes)]

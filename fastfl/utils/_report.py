"""partition_report: the per-client class frequencies of a data partition, as FedLab's CSV text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastfl.errors import EmptyDataError

__all__ = ["partition_report"]


def _report_lines(targets: np.ndarray, data_indices: Mapping[int, Any], class_num: int) -> list[str]:
    lines = [
        "Class frequencies:",
        "client," + ",".join(f"class{i}" for i in range(class_num)) + ",Amount",
    ]
    for cid in sorted(data_indices):
        indices = np.asarray(data_indices[cid], dtype=np.int64).reshape(-1)
        amount = len(indices)
        values, counts = np.unique(targets[indices], return_counts=True)
        freq = dict(zip(values.tolist(), counts.tolist(), strict=True))
        cells = [f"{freq[c] / amount:.3f}" if c in freq else "0.00" for c in range(class_num)]
        lines.append(f"Client {cid:3d}," + ",".join(cells) + f",{amount}")
    return lines


def partition_report(
    targets: Sequence[int] | np.ndarray | Any,
    data_indices: Mapping[int, Sequence[int]] | Sequence[Sequence[int]],
    class_num: int | None = None,
    verbose: bool = True,
    file: str | None = None,
) -> None:
    """Print and/or write each client's class frequencies and sample count, as FedLab 1.2.1 does.

    The text is FedLab's exactly: a "Class frequencies:" line, a header
    `client,class0,…,class{C-1},Amount`, then one line per client id in ascending order, e.g.
    `Client   0,0.200,0.00,0.200,0.600,5`: the fraction of the client's samples in each class
    (`%.3f`, or the literal `0.00` for a class the client lacks) and the client's sample count.
    The file gets the same lines joined by newlines, without a trailing newline.

    Args:
        targets: the label of every sample (list, numpy array or CPU tensor).
        data_indices: client id -> sample indices (a dict, as the partitioners return; a list
            is read as ids 0, 1, …).
        class_num: number of classes; default max(targets) + 1.
        verbose: print the report.
        file: a path to write the report to.
    """
    if not verbose and file is None:
        print("No partition report generated")
        return
    labels = np.asarray(targets)
    if not isinstance(data_indices, Mapping):
        data_indices = dict(enumerate(data_indices))
    if not class_num:
        if labels.size == 0:
            raise EmptyDataError("targets is empty; pass class_num or non-empty targets")
        class_num = int(labels.max()) + 1
    lines = _report_lines(labels, data_indices, int(class_num))
    if verbose:
        for line in lines:
            print(line)
    if file is not None:
        with open(file, "w") as fh:
            fh.write("\n".join(lines))

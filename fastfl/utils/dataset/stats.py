"""Per-client statistics of a partition: sample and class counts, class entropy, a printable table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fastfl.utils.dataset._common import OptionalDependencyError, PartitionError, as_labels


def client_class_counts(
    targets: Any, client_dict: dict[int, Any], num_classes: int | None = None
) -> np.ndarray:
    """Return the ``(num_clients, num_classes)`` matrix of how many samples of each class a client holds.

    Clients are the keys of ``client_dict`` in sorted order. One bincount over all indices, O(N).
    """
    labels = as_labels(targets, num_classes)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    clients = sorted(client_dict)
    parts = [np.asarray(client_dict[cid], dtype=np.int64).ravel() for cid in clients]
    sizes = np.array([p.shape[0] for p in parts], dtype=np.int64)
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= labels.shape[0]):
        raise PartitionError(
            f"client_dict holds sample index {int(flat.max()) if flat.max() >= 0 else int(flat.min())} "
            f"outside [0, {labels.shape[0]})"
        )
    row = np.repeat(np.arange(len(clients), dtype=np.int64), sizes)
    cells = np.bincount(row * num_classes + labels[flat], minlength=len(clients) * num_classes)
    return cells.reshape(len(clients), num_classes)


@dataclass(frozen=True)
class PartitionStats:
    """Per-client statistics of a partition.

    Attributes:
        clients: client ids, ascending.
        num_samples: sample count per client.
        class_counts: ``(num_clients, num_classes)`` counts, or None when there are no labels.
    """

    clients: np.ndarray
    num_samples: np.ndarray
    class_counts: np.ndarray | None = None

    def class_entropy(self) -> np.ndarray:
        """Entropy (nats) of each client's label distribution; 0 for an empty client."""
        if self.class_counts is None:
            raise PartitionError("these statistics have no labels, so no class entropy")
        total = self.class_counts.sum(axis=1, keepdims=True)
        p = self.class_counts / np.maximum(total, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, -p * np.log(p), 0.0)
        return terms.sum(axis=1)

    def classes_per_client(self) -> np.ndarray:
        """How many distinct classes each client holds."""
        if self.class_counts is None:
            raise PartitionError("these statistics have no labels, so no classes per client")
        return (self.class_counts > 0).sum(axis=1)

    def to_pandas(self) -> Any:
        """Return the table as a pandas DataFrame indexed by ``client`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise OptionalDependencyError("to_pandas needs pandas: pip install pandas") from exc
        columns: dict[str, Any] = {"client": self.clients, "num_samples": self.num_samples}
        if self.class_counts is not None:
            for k in range(self.class_counts.shape[1]):
                columns[f"class{k}"] = self.class_counts[:, k]
        return pd.DataFrame(columns).set_index("client")

    def to_csv(self) -> str:
        """Return the table as CSV text: client, num_samples, then one count column per class."""
        header = ["client", "num_samples"]
        body = [self.clients[:, None], self.num_samples[:, None]]
        if self.class_counts is not None:
            header += [f"class{k}" for k in range(self.class_counts.shape[1])]
            body.append(self.class_counts)
        rows = np.concatenate(body, axis=1)
        return "\n".join([",".join(header), *(",".join(map(str, r)) for r in rows.tolist())])

    def __str__(self) -> str:
        """Aligned text: per client its size and, with labels, classes held and class entropy."""
        lines = [
            f"{'client':>7} {'num_samples':>11}" + ("" if self.class_counts is None else "  classes  entropy")
        ]
        entropy = None if self.class_counts is None else self.class_entropy()
        held = None if self.class_counts is None else self.classes_per_client()
        for i, (cid, n) in enumerate(zip(self.clients.tolist(), self.num_samples.tolist(), strict=True)):
            line = f"{cid:>7} {n:>11}"
            if entropy is not None and held is not None:
                line += f"  {held[i]:>7}  {entropy[i]:7.3f}"
            lines.append(line)
        lines.append(f"{'total':>7} {int(self.num_samples.sum()):>11}")
        return "\n".join(lines)


def partition_stats(
    client_dict: dict[int, Any], targets: Any = None, num_classes: int | None = None
) -> PartitionStats:
    """Statistics of ``client_dict``; class counts too when ``targets`` are given."""
    clients = np.array(sorted(client_dict), dtype=np.int64)
    sizes = np.array([len(client_dict[cid]) for cid in clients.tolist()], dtype=np.int64)
    counts = None if targets is None else client_class_counts(targets, client_dict, num_classes)
    return PartitionStats(clients, sizes, counts)

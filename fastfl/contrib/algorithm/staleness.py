"""Staleness functions of FedAsync (Xie et al. 2019) and FedBuff (Nguyen et al. 2022), as in the papers.

`s` is the staleness t - tau: how many server versions the client's starting model is behind.
FedLab 1.3's hinge computes 1 / (a ((s - b) + 1)), not the paper's 1 / (a (s - b) + 1).
"""

from __future__ import annotations

import math

__all__ = ["STALENESS", "fedasync_staleness", "fedbuff_staleness"]

STALENESS = ("constant", "hinge", "polynomial", "sqrt")


def _check(s: float) -> float:
    if not s >= 0 or math.isinf(s):
        raise ValueError(f"staleness must be a finite number >= 0, got {s!r}")
    return float(s)


def fedasync_staleness(strategy: str, s: float, a: float = 10.0, b: float = 4.0) -> float:
    """FedAsync's s(t - tau): constant 1; hinge 1 if s <= b else 1 / (a (s - b) + 1); polynomial (s + 1)^-a.

    Raises:
        ValueError: unknown strategy, or a negative staleness.
    """
    s = _check(s)
    if strategy == "constant":
        return 1.0
    if strategy == "hinge":
        return 1.0 if s <= b else 1.0 / (a * (s - b) + 1.0)
    if strategy == "polynomial":
        return (s + 1.0) ** (-a)
    raise ValueError(f"unknown FedAsync staleness strategy {strategy!r}; use constant, hinge or polynomial")


def fedbuff_staleness(s: float) -> float:
    """FedBuff's staleness weight 1 / sqrt(1 + s)."""
    return 1.0 / math.sqrt(1.0 + _check(s))

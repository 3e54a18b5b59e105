"""FCUBE, NIID-Bench's synthetic 3-D data set: points in the cube (-1, 1)^3, class by the sign of x1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fastfl.utils.dataset._common import RngLike, as_rng, check_int


def generate_fcube(num_samples: int, rng: RngLike = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw FCUBE points: class 0 where x1 > 0, class 1 where x1 < 0.

    As in NIID-Bench, the points are balanced: each quarter of them lies in one sign pattern of
    (x2, x3), and every other point is the mirror image (-x) of a fresh draw, so both classes and
    all eight octants hold (nearly) the same number of points.

    Args:
        num_samples: number of points.
        rng: numpy Generator or seed.

    Returns:
        ``(data, targets)``: float32 ``(num_samples, 3)`` and int64 ``(num_samples,)``.
    """
    n = check_int("num_samples", num_samples, 1)
    points = as_rng(rng).random((n, 3))
    quarter = np.arange(n) * 4 // n
    points[:, 1] *= np.where(quarter > 1, -1.0, 1.0)
    points[:, 2] *= np.where(quarter % 2 == 1, -1.0, 1.0)
    odd = np.arange(n) % 2 == 1
    points[odd] *= -1.0
    return points.astype(np.float32), odd.astype(np.int64)


class FCUBE(Dataset):
    """FCUBE as an in-memory torch Dataset with ``data`` and ``targets`` arrays.

    Args:
        train: the training split (default 4000 points) or the test split (1000 points).
        num_samples: override the number of points.
        seed: seed of the generator; the test split uses a different stream than the training one.
        transform: applied to each point (a float32 tensor of 3 values).
        target_transform: applied to each label.
    """

    def __init__(
        self,
        train: bool = True,
        num_samples: int | None = None,
        seed: int = 0,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        n = num_samples if num_samples is not None else (4000 if train else 1000)
        seq = np.random.SeedSequence(check_int("seed", seed)).spawn(2)[0 if train else 1]
        self.data, self.targets = generate_fcube(n, np.random.default_rng(seq))
        self.train, self.transform, self.target_transform = train, transform, target_transform

    def __len__(self) -> int:
        """Number of points."""
        return int(self.targets.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(point, label)`` of sample ``index``."""
        x: Any = torch.from_numpy(self.data[index])
        y: Any = int(self.targets[index])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

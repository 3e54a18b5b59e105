"""Large serial-trainer rows (fastfl.ops.empty memory, pooled) keep the small rows' reuse rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastfl import ops
from fastfl.core.client import SubsetSerialTrainer
from fastfl.core.model_maintainer import read_params

# 1000 -> 1100 weights + bias: 1.1 M float32 parameters, rows of 4.4 MB (over ops.LARGE_BYTES).
IN, OUT = 1000, 1100

KEEPERS = {
    "list": lambda out: out,
    "row": lambda out: out[1],
    "slice": lambda out: out[0][-5:],
    "numpy": lambda out: out[1].numpy(),
    "storage": lambda out: out[0].untyped_storage(),
}


def _trainer(aggregate: bool = False) -> SubsetSerialTrainer:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(6, IN, generator=g), torch.randint(0, OUT, (6,), generator=g))
    args = {"epochs": 1, "batch_size": 3, "lr": 0.05, "shuffle": False}
    return SubsetSerialTrainer(
        nn.Linear(IN, OUT), data, [[0, 1], [2, 3, 4, 5]], args=args, aggregate=aggregate, batch_clients=None
    )


def _snapshot(kept: object) -> list[torch.Tensor]:
    if isinstance(kept, list):
        return [t.clone() for t in kept]
    if isinstance(kept, torch.UntypedStorage):
        return [torch.empty(0, dtype=torch.uint8).set_(kept).clone()]
    return [torch.as_tensor(kept).clone()]


def test_rows_are_large_enough_to_use_the_large_allocation():
    assert (IN * OUT + OUT) * 4 >= ops.LARGE_BYTES


@pytest.mark.parametrize("keep", list(KEEPERS.values()), ids=list(KEEPERS))
def test_kept_large_results_are_not_overwritten_and_dropped_ones_are_reused(keep):
    trainer = _trainer()
    flat = read_params(trainer.model)
    kept = keep(trainer.local_process([0, 1], [flat]))
    before = _snapshot(kept)
    for r in range(3):  # more rounds than the trainer keeps rows for, while the result is held
        out = trainer.local_process([1, 0], [flat + r + 1.0])
        del out
        big = ops.empty(2 * flat.numel())  # memory the native pool hands out must not be ours
        big.fill_(-1.0)
        del big
    after = _snapshot(kept)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    del kept
    ptrs = set()
    for r in range(4):  # the standard loop: each round's list dropped after use
        out = trainer.local_process([0, 1], [flat + r])
        ptrs.add(out[0].untyped_storage().data_ptr())
        del out
    assert len(ptrs) <= 2


def test_large_local_aggregation_equals_the_weighted_mean():
    flat = read_params(_trainer().model)
    models = [m.clone() for m in _trainer().local_process([0, 1], [flat])]
    agg = _trainer(aggregate=True)
    for _ in range(2):  # the second round's accumulator may be pooled memory: it starts from zero
        (mean,) = agg.local_process([0, 1], [flat])
        torch.testing.assert_close(mean, (2 * models[0] + 4 * models[1]) / 6)

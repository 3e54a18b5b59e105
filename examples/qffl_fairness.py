"""q-FFL fairness on Synthetic(1,1) with 100 devices (Li et al. 2020): q = 0 (FedAvg) against q > 0.

The fair_flearn protocol: multinomial logistic regression 60 -> 10, lr 0.01, batch 64, one
local epoch, 10 devices per round sampled proportionally to their sizes n_k, q-FedAvg's update
with L = 1 / lr and F_k = the device's training loss at the received model. Reports the
fairness metrics of the paper's plot_fairness.py over the devices' test accuracies: variance
(x 10^4), the worst and best 10% means, and the average.

    python examples/qffl_fairness.py --rounds 2000 --q 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fastfl.contrib.algorithm import qFedAvgSerialClientTrainer, qFedAvgServerHandler
from fastfl.utils.dataset.synthetic import generate_synthetic


def split(devices: int, seed: int) -> tuple:
    """Per device: shuffled Synthetic(1,1) samples, 90% train / 10% test."""
    rng = np.random.default_rng(seed)
    train_x, train_y, tests, slices, start = [], [], [], [], 0
    for x, y in generate_synthetic(devices, alpha=1.0, beta=1.0, rng=seed):
        order = rng.permutation(len(y))
        cut = int(0.9 * len(y))
        train_x.append(x[order[:cut]])
        train_y.append(y[order[:cut]])
        tests.append((torch.from_numpy(x[order[cut:]]), torch.from_numpy(y[order[cut:]])))
        slices.append(list(range(start, start + cut)))
        start += cut
    train = torch.utils.data.TensorDataset(
        torch.from_numpy(np.concatenate(train_x)), torch.from_numpy(np.concatenate(train_y))
    )
    return train, tests, slices


def fairness(accuracies: list[float]) -> dict[str, float]:
    """plot_fairness.py's metrics: variance x 10^4, worst / best 10% means, average."""
    a = np.sort(np.asarray(accuracies))
    tenth = max(1, len(a) // 10)
    return {
        "variance_x1e4": float(np.var(a) * 1e4),
        "worst_10pct": float(a[:tenth].mean()),
        "best_10pct": float(a[-tenth:].mean()),
        "average": float(a.mean()),
    }


def run(q: float, args: argparse.Namespace, data: tuple) -> dict:
    """One q's run; returns the fairness metrics of the final model."""
    train, tests, slices = data
    torch.manual_seed(args.seed)
    model = nn.Linear(60, 10)
    sizes = [len(s) for s in slices]
    handler = qFedAvgServerHandler(
        model,
        args.rounds,
        args.per_round / len(slices),
        seed=args.seed,
        sampling="weighted",
        sample_weights=sizes,
    )
    handler.client_num_in_total = len(slices)
    cfg = {"epochs": 1, "batch_size": args.batch_size, "lr": args.lr}
    trainer = qFedAvgSerialClientTrainer(nn.Linear(60, 10), train, slices, args=cfg, seed=args.seed, q=q)
    while not handler.if_stop:
        ids = handler.sample_clients()
        trainer.local_process(ids, handler.downlink_package)
        handler._update_global_model(trainer.uplink_package)
    with torch.no_grad():
        accuracies = [float((model(x).argmax(1) == y).float().mean()) for x, y in tests]
    return {"q": q, **fairness(accuracies)}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--q", type=float, default=1.0, help="the q > 0 compared with q = 0")
    parser.add_argument("--seed", type=int, default=1, help="data partition seed (fair_flearn uses 1..5)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = split(args.devices, args.seed)
    results = [run(0.0, args, data), run(args.q, args, data)]
    for r in results:
        print(
            f"q={r['q']:<4g} variance x1e4 {r['variance_x1e4']:8.1f}  worst 10% {r['worst_10pct']:.4f}  "
            f"best 10% {r['best_10pct']:.4f}  average {r['average']:.4f}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results))
    return results


if __name__ == "__main__":
    main()

"""FedProx with 90% stragglers on Synthetic(1,1) (Li et al. 2020, Fig. 1): FedAvg vs FedProx mu=0 and mu=1.

The paper's protocol (litian96/FedProx): 30 devices, multinomial logistic regression 60 -> 10,
lr 0.01, batch 10, E = 20 local epochs, 10 devices per round chosen with ``np.random.seed(round)``;
of those, ``round(10 * (1 - drop))`` are active. FedAvg trains only the active devices (it drops
the stragglers); FedProx also takes the stragglers' partial work (1..E-1 epochs, drawn per round).
Prints, per method, the final training loss, test accuracy and how much the training loss jumps
from round to round in the second half of the run (the instability the paper shows for FedAvg).

    python examples/fedprox_stragglers.py --rounds 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastfl.contrib.algorithm import (
    FedAvgSerialClientTrainer,
    FedProxSerialClientTrainer,
    FedProxServerHandler,
)
from fastfl.utils.dataset.synthetic import generate_synthetic


def synthetic_split(devices: int, alpha: float, beta: float, seed: int) -> tuple:
    """Synthetic(alpha, beta) per device, shuffled, 90% train / 10% test (FedProx's split)."""
    rng = np.random.default_rng(seed)
    xs, ys, tx, ty, slices, start = [], [], [], [], [], 0
    for x, y in generate_synthetic(devices, alpha=alpha, beta=beta, rng=seed):
        order = rng.permutation(len(y))
        cut = int(0.9 * len(y))
        xs.append(x[order[:cut]])
        ys.append(y[order[:cut]])
        tx.append(x[order[cut:]])
        ty.append(y[order[cut:]])
        slices.append(list(range(start, start + cut)))
        start += cut
    train = TensorDataset(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))
    test = TensorDataset(torch.from_numpy(np.concatenate(tx)), torch.from_numpy(np.concatenate(ty)))
    return train, test, slices


def evaluate(model: nn.Module, data: TensorDataset) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on a whole data set."""
    with torch.no_grad():
        out = model(data.tensors[0])
        loss = nn.functional.cross_entropy(out, data.tensors[1])
        return float(loss), float((out.argmax(1) == data.tensors[1]).float().mean())


def run(method: str, mu: float, args: argparse.Namespace, data: tuple) -> dict:
    """One method's run; returns its per-round training losses and final metrics."""
    train, test, slices = data
    torch.manual_seed(args.seed)
    model = nn.Linear(60, 10)
    handler = FedProxServerHandler(model, args.rounds, args.per_round / len(slices), seed=args.seed)
    handler.client_num_in_total = len(slices)
    cfg = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    epochs: dict[int, int] = {}
    local = epochs.__getitem__
    if method == "fedavg":
        trainer = FedAvgSerialClientTrainer(nn.Linear(60, 10), train, slices, args=cfg, seed=args.seed)
    else:
        trainer = FedProxSerialClientTrainer(
            nn.Linear(60, 10), train, slices, args=cfg, seed=args.seed, mu=mu, local_epochs=local
        )
    losses = []
    for rnd in range(args.rounds):
        np.random.seed(rnd)  # the reference's selection: the same clients for every method
        selected = np.random.choice(len(slices), args.per_round, replace=False)
        np.random.seed(rnd)
        active = set(
            np.random.choice(selected, round(args.per_round * (1 - args.drop)), replace=False).tolist()
        )
        ids = sorted(active) if method == "fedavg" else sorted(selected.tolist())
        epochs.clear()
        for cid in ids:
            epochs[cid] = args.epochs if cid in active else int(np.random.randint(1, args.epochs))
        handler.start_round(ids)
        trainer.local_process(ids, handler.downlink_package)
        handler._update_global_model(trainer.uplink_package)
        losses.append(evaluate(model, train)[0])
    half = np.array(losses[len(losses) // 2 :])
    return {
        "method": method if method == "fedavg" else f"fedprox mu={mu:g}",
        "train_loss": losses[-1],
        "test_accuracy": evaluate(model, test)[1],
        "loss_jumps": float(np.abs(np.diff(half)).mean()) if len(half) > 1 else 0.0,
        "losses": losses,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--devices", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--drop", type=float, default=0.9, help="fraction of stragglers")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data (the paper publishes none)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = synthetic_split(args.devices, 1.0, 1.0, args.seed)
    results = [
        run("fedavg", 0.0, args, data),
        run("fedprox", 0.0, args, data),
        run("fedprox", 1.0, args, data),
    ]
    for r in results:
        print(
            f"{r['method']:<14} train loss {r['train_loss']:.4f}  test acc {r['test_accuracy']:.4f}  "
            f"mean |loss change| in the second half {r['loss_jumps']:.4f}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results))
    return results


if __name__ == "__main__":
    main()

"""FedAvg over a LEAF data set with SubsetSerialTrainer: LEAF's natural clients, one process.

Each LEAF user is one client. The train split becomes one TensorDataset whose per-client index
ranges feed `SubsetSerialTrainer`; each round trains a sample of clients from the global model
and averages them with `Aggregators.fedavg_aggregate`, weighted by the clients' sample counts.
Runs on FEMNIST or LEAF Synthetic. Without `--root` it writes a small random LEAF-format tree
(`synthetic_tree`, the tests' generator) to a temporary folder and trains on that.

    python examples/leaf_fedavg.py --rounds 20                   # generated FEMNIST-format data
    python examples/leaf_fedavg.py --root ~/leaf/data --name femnist --rounds 50
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from fastfl.core.client import SubsetSerialTrainer
from fastfl.utils import Aggregators, SerializationTool
from fastfl.utils.dataset.leaf import open_leaf, synthetic_tree
from fastfl.utils.functional import evaluate_mean

CLASSES = {"femnist": 62, "synthetic": 10}


def make_model(name: str, features: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, CLASSES[name]))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", choices=sorted(CLASSES), default="femnist")
    parser.add_argument(
        "--root", type=Path, default=None, help="folder holding <name>/data (default: generate)"
    )
    parser.add_argument("--users", type=int, default=20, help="users to generate when --root is not given")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients-per-round", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, root: Path) -> list[dict]:
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    train = open_leaf(args.name, root, "train")
    test = open_leaf(args.name, root, "test")
    print(f"{args.name}: {len(train)} clients, {sum(train.num_samples)} train samples (cache {train.path})")
    trainset = train.as_tensor_dataset()
    model = make_model(args.name, trainset.tensors[0][0].numel())
    trainer = SubsetSerialTrainer(
        model,
        trainset,
        train.data_slices(),
        args={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr},
        seed=args.seed,
    )
    global_model = make_model(args.name, trainset.tensors[0][0].numel())
    testloader = DataLoader(test.as_tensor_dataset(), batch_size=1024)
    history = []
    for rnd in range(1, args.rounds + 1):
        start = time.perf_counter()
        ids = rng.sample(range(len(train)), min(args.clients_per_round, len(train)))
        trainer.local_process(ids, [SerializationTool.serialize_model(global_model)])
        merged = Aggregators.fedavg_aggregate(trainer.param_list, weights=trainer.sample_counts)
        SerializationTool.deserialize_model(global_model, merged)
        loss, acc = evaluate_mean(global_model, nn.CrossEntropyLoss(), testloader)
        history.append({"round": rnd, "loss": loss, "accuracy": acc, "seconds": time.perf_counter() - start})
        print(f"round {rnd:3d}: clients {sorted(ids)}  test loss {loss:.4f}  accuracy {acc:.3f}")
    return history


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    if args.root is not None:
        return run(args, args.root)
    with tempfile.TemporaryDirectory(prefix="leaf_fedavg_") as tmp:
        synthetic_tree(tmp, args.name, num_users=args.users, train_samples=(20, 60), test_samples=(5, 10))
        return run(args, Path(tmp))


if __name__ == "__main__":
    main()

"""Shared pieces of the examples: data sets (digits, synthetic, MNIST), the MLP, evaluation, splits."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from fastfl.utils.progress import RoundReporter

DATASETS = ("digits", "synthetic", "mnist")


def load_data(
    name: str = "digits", seed: int = 0, test_fraction: float = 0.2
) -> tuple[TensorDataset, TensorDataset]:
    """Return (train, test) TensorDatasets of float32 inputs and int64 labels.

    "digits" is scikit-learn's bundled 8x8 digits (1797 images, shipped inside the package);
    "synthetic" is 784-dimensional Gaussian clusters (10 classes); "mnist" needs torchvision and
    the data under ./data/mnist (nothing is downloaded).
    """
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
        y = torch.tensor(bunch.target, dtype=torch.int64)
    elif name == "synthetic":
        g = torch.Generator().manual_seed(seed + 12345)
        centers = torch.randn(10, 784, generator=g)
        y = torch.randint(0, 10, (6000,), generator=g)
        x = centers[y] + 2.0 * torch.randn(6000, 784, generator=g)
    elif name == "mnist":
        return _mnist()
    else:
        raise ValueError(f"unknown data set {name!r}; use one of {', '.join(DATASETS)}")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(y) * test_fraction)
    test, train = perm[:n_test], perm[n_test:]
    return TensorDataset(x[train], y[train]), TensorDataset(x[test], y[test])


def _mnist() -> tuple[TensorDataset, TensorDataset]:
    try:
        from torchvision import datasets
    except ImportError as err:
        raise SystemExit("--data mnist needs torchvision; install it or use --data digits") from err
    root = Path("data/mnist")
    try:
        parts = [datasets.MNIST(root, train=t, download=False) for t in (True, False)]
    except RuntimeError as err:
        raise SystemExit(f"MNIST not found under {root}; put it there or use --data digits") from err
    return tuple(TensorDataset(d.data.reshape(len(d), -1).float() / 255.0, d.targets.long()) for d in parts)


def make_model(in_features: int, hidden: int = 64, classes: int = 10) -> nn.Module:
    """A two-hidden-layer MLP (FedLab's examples use 784-200-200-10)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy in [0, 1]) of `model` on all of `data`."""
    was_training = model.training
    model.eval()
    x, y = data.tensors
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    model.train(was_training)
    return loss, acc


def iid_slices(num_samples: int, num_clients: int, seed: int = 0) -> list[list[int]]:
    """Split sample indices 0..num_samples-1 into `num_clients` random, near-equal parts."""
    perm = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    return [chunk.tolist() for chunk in torch.tensor_split(perm, num_clients)]


def common_args(parser: argparse.ArgumentParser, rounds: int) -> argparse.ArgumentParser:
    """Add the options every example shares."""
    parser.add_argument("--data", choices=DATASETS, default="digits", help="data set (default: digits)")
    parser.add_argument("--rounds", type=int, default=rounds, help="communication rounds")
    parser.add_argument("--epochs", type=int, default=5, help="local epochs per round")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (small models: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="path prefix of the metrics CSV/JSON/PNG")
    parser.add_argument(
        "--weighted",
        action="store_true",
        help="weight FedAvg by the clients' sample counts (default: FedLab's uniform FedAvg)",
    )
    return parser


def seed_all(seed: int, threads: int | None = None) -> None:
    """Seed torch's global generator (model initialisation) and set the thread count."""
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)


def features(data: TensorDataset) -> int:
    """The input width of a TensorDataset of flat inputs."""
    x: Tensor = data.tensors[0]
    return x.shape[1]


def dist_args(parser: argparse.ArgumentParser, world_size: int) -> argparse.ArgumentParser:
    """Add the options of a multi-process example (left unset: the script launches every process)."""
    parser.add_argument("--rank", type=int, default=None, help="this process's rank (unset: start them all)")
    parser.add_argument("--world-size", type=int, default=world_size)
    parser.add_argument("--port", type=int, default=None, help="rendezvous port on 127.0.0.1")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds any network wait may take")
    parser.add_argument("--save", default=None, help="server: save the final flat global model here")
    return parser


def launch_all(argv: list[str] | None, script: str, roles: list[list[str]], timeout: float) -> int:
    """Start `script` once per role (extra argv per process) with one free port; wait for all."""
    from fastfl.launch import free_port, launch

    base = list(sys.argv[1:] if argv is None else argv)
    port = ["--port", str(free_port())]
    commands = [[sys.executable, script, *base, *role, *port] for role in roles]
    return launch(commands, timeout=timeout + 60)


def launch_ranks(argv: list[str] | None, script: str, args: argparse.Namespace) -> int:
    """Start `script` once per rank of ``args.world_size`` (the run without --rank); wait for all."""
    roles = [["--rank", str(r)] for r in range(args.world_size)]
    return launch_all(argv, script, roles, args.timeout)


def rank_setup(args: argparse.Namespace):
    """Seed, load the data and build the model and this rank's DistNetwork (127.0.0.1)."""
    from fastfl.core.network import DistNetwork

    seed_all(args.seed, args.threads)
    train, test = load_data(args.data, seed=args.seed)
    model = make_model(features(train))
    network = DistNetwork(("127.0.0.1", args.port), args.world_size, args.rank, timeout=args.timeout)
    return train, test, model, network


def round_recorder(test: TensorDataset, reporter: RoundReporter):
    """An `on_round_end` hook that evaluates the global model and records the round."""
    state = {"start": time.perf_counter()}

    def hook(handler) -> None:
        loss, acc = evaluate(handler.model, test)
        now = time.perf_counter()
        reporter.record(handler.round, handler.last_round_clients, loss, acc, now - state["start"])
        state["start"] = now

    return hook


def save_flat(model: nn.Module, path: str | None) -> None:
    """Save the model's flat parameters (for comparing runs)."""
    if path:
        torch.save(torch.cat([p.detach().reshape(-1) for p in model.parameters()]), path)

"""Standalone FedAvg: 100 clients simulated in one process with SubsetSerialTrainer, 10 per round.

Runs in a few seconds on scikit-learn's bundled digits (``--data synthetic`` or ``--data mnist``
for the others). Prints one line per round and writes runs/standalone_fedavg.{csv,json,png}.

    python examples/standalone_fedavg.py --rounds 10
    python examples/standalone_fedavg.py --rounds 10 --batch-clients 100   # clients trained together
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import common_args, evaluate, features, iid_slices, load_data, make_model, save_flat, seed_all

from fastfl.core.client import SubsetSerialTrainer
from fastfl.core.server import SyncParameterServerHandler
from fastfl.utils import Aggregators, SerializationTool
from fastfl.utils.progress import RoundReporter


def _batch_clients(text: str) -> str | int | None:
    """--batch-clients: 'auto', 'none' or a positive count."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    return int(text)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), rounds=10)
    parser.add_argument("--clients", type=int, default=100, help="clients in total")
    parser.add_argument("--sample-ratio", type=float, default=0.1, help="fraction of clients per round")
    parser.add_argument("--save", default=None, help="save the final flat global model here")
    parser.add_argument(
        "--batch-clients",
        type=_batch_clients,
        default="auto",
        help="'auto' (default: the faster mode, timed on the first rounds), 'none' (one client at a "
        "time) or N (up to N clients at once, vmapped)",
    )
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else "runs/standalone_fedavg"

    seed_all(args.seed, args.threads)
    train, test = load_data(args.data, seed=args.seed)
    model = make_model(features(train))
    # the server's sampling, seeded as in the cross-process examples (so the same clients train)
    handler = SyncParameterServerHandler(model, args.rounds, args.sample_ratio, seed=args.seed)
    handler.client_num_in_total = args.clients
    trainer = SubsetSerialTrainer(
        copy.deepcopy(model),
        train,
        iid_slices(len(train), args.clients, seed=args.seed),
        args={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr},
        seed=args.seed,
        batch_clients=args.batch_clients,
    )
    reporter = RoundReporter(args.rounds, out=out, title=f"standalone FedAvg on {args.data}")
    for rnd in range(1, args.rounds + 1):  # FedLab's standalone loop
        start = time.perf_counter()
        ids = handler.sample_clients()
        parameters_list = trainer.local_process(ids, [SerializationTool.serialize_model(model)])
        weights = trainer.sample_counts if args.weighted else None
        SerializationTool.deserialize_model(model, Aggregators.fedavg_aggregate(parameters_list, weights))
        loss, acc = evaluate(model, test)
        reporter.record(rnd, len(ids), loss, acc, time.perf_counter() - start)
    files = reporter.close()
    save_flat(model, args.save)
    print("results:", ", ".join(str(p) for p in files.values()))
    return reporter.rows


if __name__ == "__main__":
    main()

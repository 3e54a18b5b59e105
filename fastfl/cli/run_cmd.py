"""`fastfl run CONFIG.toml`: run a configured experiment (standalone, N processes, or print torchrun lines)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fastfl.cli.config import RUN_CONTROL, load_config, parse_assignment
from fastfl.cli.outputs import CONFIG_FILE, run_dir, to_toml, write_config
from fastfl.errors import (
    CheckpointError,
    ConfigError,
    DatasetFileError,
    LeafDataMissingError,
    LeafFormatError,
    OptionalDependencyError,
)

__all__ = ["add_parser", "run"]

# flag -> config key
FLAGS = {
    "rounds": ("run.rounds", int),
    "seed": ("run.seed", int),
    "device": ("run.device", str),
    "out": ("run.out", str),
    "eval_every": ("run.eval_every", int),
    "checkpoint_every": ("run.checkpoint_every", int),
    "algorithm": ("algorithm.name", str),
    "data": ("data.name", str),
    "clients": ("partition.clients", int),
    "partition": ("partition.scheme", str),
    "model": ("model.name", str),
    "clients_per_round": ("train.clients_per_round", int),
    "epochs": ("train.epochs", int),
    "lr": ("train.lr", float),
    "batch_size": ("train.batch_size", int),
    "batch_clients": ("train.batch_clients", int),
}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to `sub`."""
    p = sub.add_parser(
        "run",
        help="run a configured experiment",
        description=__doc__,
        epilog=_keys_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", type=Path, help="the TOML config (default: built-in defaults)")
    p.add_argument(
        "--set",
        dest="assign",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any key, e.g. --set train.lr=0.05 --set algorithm.mu=0.01 (repeatable)",
    )
    for flag, (key, kind) in FLAGS.items():
        p.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=kind, default=None, help=f"sets {key}")
    p.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint"
    )
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        metavar="N",
        help="stop after round N with a checkpoint (continue later with --resume)",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="run as N processes on this machine: a server and N-1 serial-trainer client ranks",
    )
    p.add_argument(
        "--torchrun-nodes",
        type=int,
        default=None,
        metavar="M",
        help="print the torchrun command line of each of M machines (N processes each) and exit",
    )
    p.add_argument("--master-addr", default="HOST0", help="server machine's address for --torchrun-nodes")
    p.add_argument("--master-port", type=int, default=29500, help="torchrun's port on the server machine")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds any network wait may take")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--check", action="store_true", help="validate the config, print it resolved (TOML), write nothing"
    )
    for hidden in ("--rank", "--world-size", "--port"):
        p.add_argument(hidden, type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--from-env", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)
    return p


def _keys_help() -> str:
    from fastfl.cli.config import SCHEMA

    lines = ["config keys (section.key = default: meaning); [algorithm] also takes its hyperparameters:"]
    for section, keys in SCHEMA.items():
        for key, (_, default, text) in keys.items():
            lines.append(f"  {section}.{key} = {default!r}: {text}")
    return "\n".join(lines)


def _overrides(args: argparse.Namespace) -> list[tuple[str, Any]]:
    pairs = [parse_assignment(text) for text in args.assign]
    pairs += [
        (key, getattr(args, flag)) for flag, (key, _) in FLAGS.items() if getattr(args, flag) is not None
    ]
    return pairs


def _resume_config(args: argparse.Namespace, pairs: list[tuple[str, Any]]) -> tuple[Path, list]:
    folder = args.resume
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise ConfigError(f"--resume {folder}: no {CONFIG_FILE} there; give the folder of an earlier run")
    if args.config is not None:
        raise ConfigError("--resume takes the config from the run folder; drop the CONFIG argument")
    for key, _ in pairs:
        section, _, name = key.partition(".")
        if (section, name) not in RUN_CONTROL:
            accepted = ", ".join(f"{s}.{k}" for s, k in sorted(RUN_CONTROL) if k != "out")
            raise ConfigError(f"{key}: cannot change when resuming; accepted: {accepted}")
    return config, [*pairs, ("run.out", str(folder))]


def run(args: argparse.Namespace) -> int:
    """Validate the config, then run it; return the exit status."""
    from fastfl.cli.experiment import prepare

    pairs = _overrides(args)
    config_path = args.config
    if args.resume is not None:
        config_path, pairs = _resume_config(args, pairs)
    cfg = load_config(config_path, pairs)
    if args.processes < 1:
        raise ConfigError(f"--processes: must be >= 1, got {args.processes}")
    distributed = args.processes > 1 or args.rank is not None or args.from_env
    if distributed and (cfg["run"]["checkpoint_every"] or args.resume or args.stop_after):
        raise ConfigError(
            "run.checkpoint_every / --resume / --stop-after: checkpoints are for standalone runs "
            "(--processes 1)"
        )
    folder = run_dir(cfg)
    if args.torchrun_nodes is not None:
        from fastfl.cli.processes import torchrun_lines

        prepare(cfg)
        write_config(cfg, folder)
        for line in torchrun_lines(
            folder / CONFIG_FILE, args.processes, args.torchrun_nodes, args.master_addr, args.master_port
        ):
            print(line)
        print(f"# copy {folder / CONFIG_FILE} (written now) to the same path on every machine first")
        return 0
    if args.rank is not None or args.from_env:
        return _worker(args, cfg, folder)
    exp = prepare(cfg)  # every check before anything is written
    if args.check:
        print(to_toml(cfg.values), end="")
        print(f"# {exp.algorithm.name}: {exp.clients} clients, {len(exp.data.train)} training samples")
        return 0
    if args.processes - 1 > exp.clients:
        raise ConfigError(
            f"--processes: {args.processes - 1} client ranks but only {exp.clients} clients; "
            f"use at most --processes {exp.clients + 1}"
        )
    if args.resume is not None:
        from fastfl.cli.checkpoint import config_digest, load_checkpoint

        load_checkpoint(folder, config_digest(cfg.experiment()))
    if args.resume is None:
        _clear_previous_run(folder)
    write_config(cfg, folder)
    if cfg["partition"]["plot"] and args.resume is None:
        from fastfl.cli.data_cmd import write_partition

        write_partition(folder, exp.data.train.tensors[1], exp.slices, exp.data.num_classes)
    if args.processes > 1:
        from fastfl.cli.processes import launch_ranks

        status = launch_ranks(folder / CONFIG_FILE, folder, args.processes, args.timeout, args.quiet)
        if status == 0 and not args.quiet:
            print(f"run folder: {folder}")
        return status
    from fastfl.cli.simulate import simulate

    simulate(exp, folder, resume=args.resume is not None, stop_after=args.stop_after, quiet=args.quiet)
    if not args.quiet:
        print(f"run folder: {folder}")
    return 0


def _clear_previous_run(folder: Path) -> None:
    """A fresh run in a used folder: drop the old checkpoint and TensorBoard events (not resumable)."""
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    for old in (folder / "tensorboard").glob("events.out.tfevents.*"):
        old.unlink()


def _worker(args: argparse.Namespace, cfg: Any, folder: Path) -> int:
    from fastfl.cli.experiment import prepare
    from fastfl.cli.processes import env_rank, run_rank

    if args.from_env:
        rank, world, host, port = env_rank()
    else:
        rank, world, host, port = args.rank, args.world_size, "127.0.0.1", args.port
    exp = prepare(cfg)
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
    return run_rank(exp, folder, rank, world, (host, port), args.timeout, args.quiet)


def report_error(err: Exception) -> int:
    """Print a config or checkpoint error as one line; return exit status 2."""
    print(f"error: {err}", file=sys.stderr)
    return 2


# Errors reported as one line (exit status 2): bad configs, checkpoints and data files.
ERRORS = (
    ConfigError,
    CheckpointError,
    DatasetFileError,
    LeafDataMissingError,
    LeafFormatError,
    OptionalDependencyError,
)

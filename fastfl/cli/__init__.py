"""The `fastfl` command: `fastfl run CONFIG.toml`, `fastfl data leaf ...`, `fastfl data partition ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from fastfl.cli import data_cmd, run_cmd

    parser = argparse.ArgumentParser(prog="fastfl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_cmd.add_parser(sub)
    data_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for a bad config, data or checkpoint)."""
    from fastfl.cli.run_cmd import ERRORS, report_error

    args = _parser().parse_args(None if argv is None else list(argv))
    try:
        return int(args.func(args))
    except ERRORS as err:
        return report_error(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

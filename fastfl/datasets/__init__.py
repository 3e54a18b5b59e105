"""Command-line tools for data sets: `python -m fastfl.datasets leaf --name femnist --root DIR`."""

from __future__ import annotations

from fastfl.datasets.cli import main

__all__ = ["main"]

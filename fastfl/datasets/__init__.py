"""Alias of `fastfl data leaf` kept for `python -m fastfl.datasets leaf --name femnist --root DIR`."""

from __future__ import annotations

from fastfl.cli.data_cmd import main

__all__ = ["main"]

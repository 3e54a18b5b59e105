"""Entry point of `python -m fastfl.datasets`."""

from __future__ import annotations

import sys

from fastfl.datasets.cli import main

if __name__ == "__main__":
    sys.exit(main())

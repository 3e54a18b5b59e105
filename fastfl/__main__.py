"""`python -m fastfl`: the same as the `fastfl` command."""

from __future__ import annotations

import sys

from fastfl.cli import main

if __name__ == "__main__":
    sys.exit(main())

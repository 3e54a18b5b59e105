"""Entry point of `python -m fastfl.datasets` (the same as `fastfl data`)."""

from __future__ import annotations

import sys

from fastfl.cli.data_cmd import main

if __name__ == "__main__":
    sys.exit(main())

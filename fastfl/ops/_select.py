"""Choose the kernel backend once, at import, and say which one was chosen and why."""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

from fastfl.errors import BackendError

BACKENDS = ("native", "numba", "torch")
_log = logging.getLogger("fastfl")


def load(name: str) -> ModuleType:
    """Import one backend module by name.

    Raises:
        BackendError: the backend is unknown or cannot be imported (with the reason).
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(f"fastfl.ops._{name}")
    except BackendError:
        raise
    except ImportError as err:
        raise BackendError(f"backend {name!r} is not available: {err}") from err


def choose() -> ModuleType:
    """Pick the backend from FASTFL_BACKEND, else the first of native, numba, torch that loads.

    FASTFL_REQUIRE_NATIVE=1 turns any outcome other than native into a BackendError.
    """
    forced = os.environ.get("FASTFL_BACKEND", "").strip().lower()
    require_native = os.environ.get("FASTFL_REQUIRE_NATIVE") == "1"
    if forced:
        if require_native and forced != "native":
            raise BackendError(f"FASTFL_REQUIRE_NATIVE=1 contradicts FASTFL_BACKEND={forced}")
        return load(forced)
    reasons = []
    for name in BACKENDS:
        try:
            module = load(name)
        except BackendError as err:
            if require_native:
                raise BackendError(f"FASTFL_REQUIRE_NATIVE=1 but {err}") from err
            reasons.append(str(err))
            continue
        if reasons:
            _log.warning("fastfl falls back to the %s backend: %s", name, "; ".join(reasons))
        return module
    raise BackendError("no kernel backend could be loaded: " + "; ".join(reasons))

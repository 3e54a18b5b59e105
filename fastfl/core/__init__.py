"""fastfl.core: the FL roles (client, server), the communicator, DistNetwork and NetworkManager.

As `fedlab.core`, it re-exports the submodules `client`, `server` and `communicator` and the
classes `DistNetwork` and `NetworkManager`. `client` and `server` are imported on first access,
so importing fastfl.core (or fastfl.core.communicator) stays light.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fastfl.core import communicator
from fastfl.core.network import DistNetwork
from fastfl.core.network_manager import NetworkManager

__all__ = ["DistNetwork", "NetworkManager", "client", "communicator", "server"]

_LAZY_SUBMODULES = ("client", "server")


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

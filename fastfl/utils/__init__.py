"""fastfl.utils: Aggregators, SerializationTool, MessageCode and Logger (FedLab 1.2.1's names).

The submodules `functional` and `dataset` are imported on first use (`fastfl.utils.functional`,
`import fastfl.utils.dataset`), so importing fastfl.utils stays light.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fastfl.utils.aggregator import Aggregators, StreamingAggregator
from fastfl.utils.logger import Logger
from fastfl.utils.message_code import MessageCode
from fastfl.utils.serialization import SerializationTool
from fastfl.utils.state_dicts import aggregate_state_dicts

__all__ = ["Aggregators", "Logger", "MessageCode", "SerializationTool", "StreamingAggregator"]
__all__ += ["aggregate_state_dicts"]

_LAZY_SUBMODULES = ("functional", "dataset")


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Client side: trainers (ordinary and serial) and the client managers (FedLab 1.2.1 API).

The managers (which pull in torch.distributed) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

ORDINARY_TRAINER = 0
SERIAL_TRAINER = 1

from fastfl.core.client.serial_trainer import SerialTrainer, SubsetSerialTrainer
from fastfl.core.client.trainer import ClientTrainer, SGDClientTrainer

__all__ = [
    "ORDINARY_TRAINER",
    "SERIAL_TRAINER",
    "ActiveClientManager",
    "ClientManager",
    "ClientTrainer",
    "PassiveClientManager",
    "SGDClientTrainer",
    "SerialTrainer",
    "SubsetSerialTrainer",
]

_MANAGERS = ("ActiveClientManager", "ClientManager", "PassiveClientManager")


def __getattr__(name: str) -> Any:
    if name in _MANAGERS:
        return getattr(importlib.import_module("fastfl.core.client.manager"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

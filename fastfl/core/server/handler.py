"""The server's model-update logic: base, synchronous (FedAvg) and asynchronous (FedAsync) handlers."""

from __future__ import annotations

from fastfl.core.server._async_handler import AsyncParameterServerHandler, staleness_weight
from fastfl.core.server._base_handler import ParameterServerBackendHandler
from fastfl.core.server._sync_handler import SyncParameterServerHandler

__all__ = [
    "AsyncParameterServerHandler",
    "ParameterServerBackendHandler",
    "SyncParameterServerHandler",
    "staleness_weight",
]

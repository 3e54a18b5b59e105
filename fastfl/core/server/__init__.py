"""Server side: handlers (model updates) and managers (the network protocol), FedLab 1.2.1 API."""

from __future__ import annotations

from fastfl.core.server.handler import (
    AsyncParameterServerHandler,
    ParameterServerBackendHandler,
    SyncParameterServerHandler,
)
from fastfl.core.server.manager import (
    AsynchronousServerManager,
    ServerManager,
    SynchronousServerManager,
)

__all__ = [
    "AsyncParameterServerHandler",
    "AsynchronousServerManager",
    "ParameterServerBackendHandler",
    "ServerManager",
    "SyncParameterServerHandler",
    "SynchronousServerManager",
]

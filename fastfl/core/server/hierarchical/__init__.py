"""Hierarchical mode: a top server, Schedulers in the middle, and lower client groups."""

from __future__ import annotations

from fastfl.core.server.hierarchical.connector import ClientConnector, Connector, ServerConnector
from fastfl.core.server.hierarchical.scheduler import Scheduler

__all__ = ["ClientConnector", "Connector", "Scheduler", "ServerConnector"]

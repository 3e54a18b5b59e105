"""Scheduler: the middle server of a hierarchical run, a client of the top server and a server below."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch.multiprocessing as mp

from fastfl.core.network import DistNetwork
from fastfl.core.server.hierarchical.connector import ClientConnector, ServerConnector
from fastfl.errors import CommunicationError

__all__ = ["STOP_GRACE", "Scheduler"]

STOP_GRACE = 5.0  # seconds a connector gets after SIGTERM before SIGKILL


class Scheduler:
    """Run a ServerConnector (upper network) and a ClientConnector (lower network) as two processes.

    `run()` returns when both have exited; if one of them fails, the other is stopped (SIGTERM,
    then SIGKILL after `STOP_GRACE` seconds) and CommunicationError names the failed side. The
    connectors exit by themselves if this process dies.

    Args:
        net_upper: this scheduler's DistNetwork in the upper group (a client rank).
        net_lower: its DistNetwork in the lower group (rank 0).
    """

    def __init__(self, net_upper: DistNetwork, net_lower: DistNetwork):
        self.net_upper = net_upper
        self.net_lower = net_lower
        self.MQs = [mp.Queue(), mp.Queue()]  # MQ0: up, MQ1: down
        rank = net_upper.rank
        self.logger_upper = logging.getLogger(f"Scheduler{rank}-ServerConnector")
        self.logger_lower = logging.getLogger(f"Scheduler{rank}-ClientConnector")

    def run(self) -> None:
        """Start both connectors and wait for both."""
        up, down = self.MQs
        connectors = {
            "server connector": ServerConnector(self.net_upper, down, up, self.logger_upper),
            "client connector": ClientConnector(self.net_lower, up, down, self.logger_lower),
        }
        for c in connectors.values():
            c.start()
        try:
            self._wait(connectors)
        finally:
            for c in connectors.values():
                if c.is_alive():
                    c.terminate()
                c.join(STOP_GRACE)
                if c.is_alive():
                    c.kill()
                    c.join()

    def _wait(self, connectors: dict[str, Any]) -> None:
        while any(c.is_alive() for c in connectors.values()):
            for name, c in connectors.items():
                if c.exitcode not in (None, 0):
                    raise CommunicationError(f"the scheduler's {name} exited with code {c.exitcode}")
            time.sleep(0.05)
        for name, c in connectors.items():
            if c.exitcode != 0:
                raise CommunicationError(f"the scheduler's {name} exited with code {c.exitcode}")

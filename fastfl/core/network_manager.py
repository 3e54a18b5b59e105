"""NetworkManager: a process that owns a DistNetwork and runs setup, main loop and shutdown."""

from __future__ import annotations

from typing import Any

import torch.multiprocessing as mp

from fastfl.core.network import DistNetwork

__all__ = ["NetworkManager"]


class NetworkManager(mp.Process):
    """Base of the client and server managers: `run()` = `setup()`, `main_loop()`, `shutdown()`.

    `start()` runs it in a child process; calling `run()` runs it in this one. `shutdown()` runs
    even when `setup()` or `main_loop()` raised, so the connection is always closed.

    Args:
        network: the DistNetwork this manager talks through.
    """

    def __init__(self, network: DistNetwork | None) -> None:
        super().__init__()
        self._network = network

    def run(self) -> None:
        """Run the manager: set up, loop, and always shut down."""
        try:
            self.setup()
            self.main_loop()
        finally:
            self.shutdown()

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the network."""
        self._network.init_network_connection()

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """The manager's protocol; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define main_loop()")

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """Leave the network."""
        if self._network is not None:
            self._network.close_network_connection()

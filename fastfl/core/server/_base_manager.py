"""ServerManager: the base of the server managers (the SetUp handshake and the Coordinator)."""

from __future__ import annotations

import logging
from typing import Any

from fastfl.core.coordinator import Coordinator
from fastfl.core.network import DistNetwork
from fastfl.core.network_manager import NetworkManager
from fastfl.errors import CommunicationError, PeerLostError
from fastfl.utils.message_code import MessageCode

__all__ = ["DEFAULT_SERVER_RANK", "PEER_LOST", "ServerManager"]

DEFAULT_SERVER_RANK = 0
PEER_LOST = (PeerLostError,)


class ServerManager(NetworkManager):
    """Base of the server managers: the SetUp handshake builds the Coordinator.

    Args:
        network: the server's DistNetwork (rank 0).
        handler: the model-update logic (a ParameterServerBackendHandler or any object with its
            interface).
        logger: where to log (default: the ``fastfl.server`` logger), kept as `_LOGGER`.
    """

    _DEFAULT_LOGGER = "fastfl.server"

    def __init__(self, network: DistNetwork, handler: Any, logger: Any = None):
        super().__init__(network)
        self._handler = handler
        self._LOGGER = logger if logger is not None else logging.getLogger("fastfl.server")
        self.coordinator: Coordinator | None = None

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the network; receive each client rank's client count (SetUp), ranks in order."""
        super().setup()
        counts: dict[int, int] = {}
        for rank in range(1, self._network.world_size):
            _, code, content = self._network.recv(src=rank)[:3]
            if code != MessageCode.SetUp or not content:
                raise CommunicationError(
                    f"rank {rank} sent {code} during setup; a client must first send SetUp with its client count"
                )
            counts[rank] = int(content[0].reshape(-1)[0].item())
        self.coordinator = Coordinator(counts, mode="LOCAL")
        if self._handler is not None:
            self._handler.client_num_in_total = self.coordinator.total
        self._LOGGER.info(f"setup done: {self.coordinator.total} clients on ranks {list(counts)}")

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """Stop every client (`shutdown_clients`, once setup has run), then leave the network."""
        try:
            if self.coordinator is not None:
                self.shutdown_clients()
        finally:
            super().shutdown()

    def shutdown_clients(self) -> None:
        """Tell every client rank to exit (each manager's own protocol)."""
        raise NotImplementedError

    def _global_ids(self, rank: int) -> range:
        """The global client ids that `rank` owns."""
        first = 0
        for r, n in (self.coordinator.map if self.coordinator is not None else {}).items():
            if r == rank:
                return range(first, first + n)
            first += n
        return range(0)

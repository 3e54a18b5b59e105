"""Connectors of a hierarchical Scheduler: one process faces the top server, one its lower clients.

Two queues join them: MQ0 carries traffic up (lower clients -> top server), MQ1 traffic down.
Parameters pass through unchanged: the client id list travels as floats of the parameters' dtype
and fastfl packages keep every tensor's dtype (FedLab 1.2.1 cast the parameters to int32, B5).
Shutdown needs no kill and no sleep: Exit flows down, the lower group's exit feedback flows back
up, and only then does the connector report to the top server.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import torch

from fastfl.core.coordinator import Coordinator
from fastfl.core.network import DistNetwork
from fastfl.core.network_manager import NetworkManager
from fastfl.errors import CommunicationError
from fastfl.utils.message_code import MessageCode

__all__ = ["ClientConnector", "Connector", "ServerConnector"]


class Connector(NetworkManager):
    """A NetworkManager that also reads one queue and writes another.

    Args:
        network: the DistNetwork of this side.
        write_queue: where received traffic goes.
        read_queue: where traffic to send comes from.
        logger: where to log.
    """

    def __init__(self, network: DistNetwork, write_queue: Any, read_queue: Any, logger: Any = None):
        super().__init__(network)
        self.mq_write = write_queue
        self.mq_read = read_queue
        self._logger = logger if logger is not None else logging.getLogger("fastfl.scheduler")

    def process_message_queue(self) -> None:
        """Forward what arrives on `read_queue` to the network."""
        raise NotImplementedError(f"{type(self).__name__} must define process_message_queue()")

    def process_meessage_queue(self) -> None:
        """FedLab 1.2.1's (misspelt) name of `process_message_queue`."""
        self.process_message_queue()

    def _forwarder(self) -> threading.Thread:
        thread = threading.Thread(target=self.process_message_queue, name=f"{type(self).__name__}-queue")
        thread.start()
        return thread


class ServerConnector(Connector):
    """The Scheduler's face to the top server: one client rank of the upper group."""

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the upper network; report the lower group's client count with SetUp."""
        super().setup()
        _, code, payload = self.mq_read.get()
        if code != MessageCode.SetUp:
            raise CommunicationError(f"the client connector sent {code} before SetUp")
        self.group_client_num = int(payload[0].item())
        count = torch.tensor([self.group_client_num], dtype=torch.int32)
        self._network.send(count, MessageCode.SetUp, 0)

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Pass the top server's packages down until Exit; then wait for the lower group to finish."""
        thread = self._forwarder()
        while True:
            sender, code, payload = self._network.recv(src=0)
            self.mq_write.put((sender, code, payload))
            if code == MessageCode.Exit:
                thread.join()
                if self._network.rank == self._network.world_size - 1:
                    self._network.send(None, MessageCode.Exit, 0)
                self._logger.info("server connector: exit")
                break

    def process_message_queue(self) -> None:
        """Send the lower clients' uploads to the top server until the lower group has exited."""
        while True:
            _, code, payload = self.mq_read.get()
            if code == MessageCode.Exit:
                return
            self._network.send(payload, code, 0)


class ClientConnector(Connector):
    """The Scheduler's face to its lower clients: rank 0 of the lower group."""

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the lower network, take each lower rank's SetUp, report the group total upward."""
        super().setup()
        counts = {}
        for rank in range(1, self._network.world_size):
            _, code, content = self._network.recv(src=rank)
            if code != MessageCode.SetUp:
                raise CommunicationError(f"lower rank {rank} sent {code} during setup instead of SetUp")
            counts[rank] = int(content[0].reshape(-1)[0].item())
        self.coordinator = Coordinator(counts, mode="LOCAL")
        self.group_client_num = self.coordinator.total
        total = torch.tensor([self.group_client_num], dtype=torch.int32)
        self.mq_write.put((self._network.rank, MessageCode.SetUp, [total]))

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Pass the lower clients' uploads up until the last lower rank's exit feedback."""
        thread = self._forwarder()
        while True:
            sender, code, payload = self._network.recv()
            if code == MessageCode.Exit:
                thread.join()
                self.mq_write.put((None, MessageCode.Exit, None))
                break
            self.mq_write.put((sender, code, payload))

    def process_message_queue(self) -> None:
        """Map the top server's group-level ids to lower ranks and send each its share."""
        while True:
            _, code, payload = self.mq_read.get()
            ids = [int(i) for i in payload[0].reshape(-1).tolist()]
            rest = list(payload[1:])
            dtype = rest[0].dtype if rest and rest[0].is_floating_point() else torch.float32
            for rank, local_ids in self.coordinator.map_id_list(ids).items():
                self._network.send([torch.tensor(local_ids, dtype=dtype), *rest], code, rank)
            if code == MessageCode.Exit:
                return

"""Client managers: the client side of FedLab 1.2.1's protocol (handshake, passive and active loops)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from fastfl.core.client import ORDINARY_TRAINER, SERIAL_TRAINER
from fastfl.core.network import DistNetwork
from fastfl.core.network_manager import NetworkManager
from fastfl.errors import CommunicationError
from fastfl.utils.message_code import MessageCode

__all__ = ["ActiveClientManager", "ClientManager", "PassiveClientManager"]

SERVER_RANK = 0


class ClientManager(NetworkManager):
    """Base of the client managers: joins the network and reports its client count to the server.

    Args:
        network: this process's DistNetwork (rank >= 1).
        trainer: a ClientTrainer (one client) or SerialTrainer (many).
        logger: where to log (default: the ``fastfl.client`` logger).
        compressor: opt-in: a `fastfl.contrib.compressor` compressor that encodes the uplink's
            model tensors on the wire (see `fastfl.contrib.compressor.uplink`); None sends them as is.
    """

    def __init__(self, network: DistNetwork, trainer: Any, logger: Any = None, *, compressor: Any = None):
        super().__init__(network)
        if compressor is not None:
            from fastfl.contrib.compressor import CompressedUplink

            trainer = CompressedUplink(trainer, compressor)
        self._trainer = trainer
        self._logger = logger if logger is not None else logging.getLogger("fastfl.client")

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the network, then send SetUp with ``int32 [client_num]`` to the server."""
        super().setup()
        count = torch.tensor([int(self._trainer.client_num)], dtype=torch.int32)
        self._network.send(content=count, message_code=MessageCode.SetUp, dst=SERVER_RANK)

    def _receive_update(self) -> list[Tensor] | None:
        """Receive the server's next message: its payload ([] if empty) for ParameterUpdate, None after Exit."""
        _, code, payload = self._network.recv(src=SERVER_RANK)
        if code == MessageCode.Exit:
            self._exit()
            return None
        if code != MessageCode.ParameterUpdate:
            raise CommunicationError(f"Invalid MessageCode {code}. Please check MessageCode list.")
        return payload or []

    def _exit(self) -> None:
        """Handle Exit: the last rank tells the server it has finished (exit feedback)."""
        if self._network.rank == self._network.world_size - 1:
            self._network.send(message_code=MessageCode.Exit, dst=SERVER_RANK)

    def synchronize(self) -> None:
        """Upload the trainer's `uplink_package` with ParameterUpdate."""
        self._logger.info("Uploading information to server.")
        self._network.send(
            content=self._trainer.uplink_package, message_code=MessageCode.ParameterUpdate, dst=SERVER_RANK
        )


class PassiveClientManager(ClientManager):
    """Synchronous client: train when the server sends ParameterUpdate, stop on Exit."""

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Answer every ``ParameterUpdate [ids, params...]`` with an update until Exit."""
        while True:
            payload = self._receive_update()
            if payload is None:
                break
            if not payload or len(payload) < 2:
                raise CommunicationError(
                    "ParameterUpdate from the server must carry [client ids, params, ...]"
                )
            id_list = [int(i) for i in payload[0].to(torch.int64).tolist()]
            payload = payload[1:]
            if self._trainer.type == SERIAL_TRAINER:
                self._trainer.local_process(id_list=id_list, payload=payload)
            elif self._trainer.type == ORDINARY_TRAINER:
                if len(id_list) != 1:
                    raise CommunicationError(
                        f"the server activated clients {id_list} on rank {self._network.rank}, which runs "
                        "one ordinary trainer; a process with many clients needs a SerialTrainer"
                    )
                self._trainer.local_process(payload=payload)
            else:
                raise ValueError(
                    f"trainer.type must be ORDINARY_TRAINER or SERIAL_TRAINER, got {self._trainer.type}"
                )
            self.synchronize()


class ActiveClientManager(ClientManager):
    """Asynchronous client: request the model, train, upload, repeat until Exit."""

    def request(self) -> None:
        """Ask the server for the current model (ParameterRequest, no content)."""
        self._logger.info("request parameter procedure.")
        self._network.send(message_code=MessageCode.ParameterRequest, dst=SERVER_RANK)

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Request, train on the ``[params, time]`` reply, upload; stop on Exit."""
        while True:
            self.request()
            payload = self._receive_update()
            if payload is None:
                break
            self._trainer.local_process(payload)
            self.synchronize()

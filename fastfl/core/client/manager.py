"""Client managers: the client side of FedLab 1.2.1's protocol (handshake, passive and active loops).

Fidelity rule (docs/compat.md): FedLab-1.2.1-style code sees FedLab's behaviour: the trainer's
`local_process` gets FedLab's arguments and `uplink_package` is uploaded unchanged. A manager
talks to its trainer only through the interface documented in `fastfl.core.client.trainer`;
the trainer's `uplink_meta` (fastfl's sample counts) travels as package metadata when the trainer
has it and the network can carry it.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch
from torch import Tensor

from fastfl.core._updates import send_with_meta
from fastfl.core.network import DistNetwork
from fastfl.core.network_manager import NetworkManager
from fastfl.errors import CommunicationError
from fastfl.utils.message_code import MessageCode

__all__ = ["ActiveClientManager", "ClientManager", "PassiveClientManager", "takes_id_list"]

SERVER_RANK = 0


def takes_id_list(trainer: Any) -> bool:
    """True when ``trainer.local_process`` takes ``id_list`` (a trainer of many clients, FedLab's serial form)."""
    try:
        return "id_list" in inspect.signature(trainer.local_process).parameters
    except (TypeError, ValueError):
        return False


class ClientManager(NetworkManager):
    """Base of the client managers: joins the network and reports its client count to the server.

    Args:
        network: this process's DistNetwork (rank >= 1).
        trainer: a ClientTrainer (one client) or SerialTrainer (many), or any object with their interface.
        logger: where to log (default: the ``fastfl.client`` logger), kept as `_LOGGER`.
        compressor: opt-in: a `fastfl.contrib.compressor` compressor that encodes the uplink's
            model tensors on the wire as deltas from the received model, which the server
            manager adds back (see `fastfl.contrib.compressor.uplink`); None sends them as is.
    """

    _DEFAULT_LOGGER = "fastfl.client"

    def __init__(self, network: DistNetwork, trainer: Any, logger: Any = None, *, compressor: Any = None):
        super().__init__(network)
        if compressor is not None:
            from fastfl.contrib.compressor import CompressedUplink

            trainer = CompressedUplink(trainer, compressor)
        self._trainer = trainer
        self._LOGGER = logger if logger is not None else logging.getLogger("fastfl.client")

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the network, then send SetUp with ``int32 [client_num]`` to the server."""
        super().setup()
        count = torch.tensor([int(self._trainer.client_num)], dtype=torch.int32)
        self._network.send(content=count, message_code=MessageCode.SetUp, dst=SERVER_RANK)

    def _receive_update(self) -> list[Tensor] | None:
        """Receive the server's next message: its payload ([] if empty) for ParameterUpdate, None after Exit."""
        _, code, payload = self._network.recv(src=SERVER_RANK)[:3]
        if code == MessageCode.Exit:
            if self._network.rank == self._network.world_size - 1:  # the exit feedback
                self._network.send(message_code=MessageCode.Exit, dst=SERVER_RANK)
            return None
        if code != MessageCode.ParameterUpdate:
            raise CommunicationError(f"Invalid MessageCode {code}. Please check MessageCode list.")
        return payload or []

    def synchronize(self) -> None:
        """Upload the trainer's `uplink_package` with ParameterUpdate (and its `uplink_meta`, if any)."""
        self._LOGGER.info("Uploading information to server.")
        meta = getattr(self._trainer, "uplink_meta", None)
        send_with_meta(
            self._network, self._trainer.uplink_package, MessageCode.ParameterUpdate, SERVER_RANK, meta
        )


class PassiveClientManager(ClientManager):
    """Synchronous client: train when the server sends ParameterUpdate, stop on Exit."""

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Answer every ``ParameterUpdate [ids, params...]`` with an update until Exit.

        A trainer whose `local_process` takes `id_list` gets ``local_process(id_list=..., payload=...)``;
        any other gets ``local_process(payload=...)`` and must have been sent exactly one id.
        """
        many = takes_id_list(self._trainer)
        while True:
            payload = self._receive_update()
            if payload is None:
                break
            if len(payload) < 2:
                raise CommunicationError(
                    "ParameterUpdate from the server must carry [client ids, params, ...]"
                )
            id_list = [int(i) for i in payload[0].to(torch.int64).tolist()]
            payload = payload[1:]
            if many:
                self._trainer.local_process(id_list=id_list, payload=payload)
            else:
                if len(id_list) != 1:
                    raise CommunicationError(
                        f"the server activated clients {id_list} on rank {self._network.rank}, whose trainer "
                        "stands for one client; a process with many clients needs a SerialTrainer"
                    )
                self._trainer.local_process(payload=payload)
            self.synchronize()


class ActiveClientManager(ClientManager):
    """Asynchronous client: request the model, train, upload, repeat until Exit."""

    def request(self) -> None:
        """Ask the server for the current model (ParameterRequest, no content)."""
        self._LOGGER.info("request parameter procedure.")
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

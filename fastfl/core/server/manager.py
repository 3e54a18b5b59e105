"""Server managers: FedLab 1.2.1's server protocol (handshake, rounds, exit) with deadlines and faults."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch

from fastfl.core.coordinator import Coordinator
from fastfl.core.network import DistNetwork
from fastfl.core.network_manager import NetworkManager
from fastfl.core.server._receiver import Receiver
from fastfl.errors import CommunicationError, CommunicationTimeout, PeerLostError
from fastfl.utils.message_code import MessageCode

__all__ = ["DEFAULT_SERVER_RANK", "AsynchronousServerManager", "ServerManager", "SynchronousServerManager"]

DEFAULT_SERVER_RANK = 0
ON_MISSING = ("finish", "error")


class ServerManager(NetworkManager):
    """Base of the server managers: the SetUp handshake builds the Coordinator.

    Args:
        network: the server's DistNetwork (rank 0).
        handler: the model-update logic (a ParameterServerBackendHandler).
        logger: where to log (default: the ``fastfl.server`` logger).
    """

    def __init__(self, network: DistNetwork, handler: Any, logger: Any = None):
        super().__init__(network)
        self._handler = handler
        self._logger = logger if logger is not None else logging.getLogger("fastfl.server")
        self.coordinator: Coordinator | None = None

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the network; receive each client rank's client count (SetUp), ranks in order."""
        super().setup()
        counts: dict[int, int] = {}
        for rank in range(1, self._network.world_size):
            _, code, content = self._network.recv(src=rank)
            if code != MessageCode.SetUp or not content:
                raise CommunicationError(
                    f"rank {rank} sent {code} during setup; a client must first send SetUp with its client count"
                )
            counts[rank] = int(content[0].reshape(-1)[0].item())
        self.coordinator = Coordinator(counts, mode="LOCAL")
        if self._handler is not None:
            self._handler.client_num_in_total = self.coordinator.total
        self._logger.info(f"setup done: {self.coordinator.total} clients on ranks {list(counts)}")

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
        assert self.coordinator is not None
        first = 0
        for r, n in self.coordinator.map.items():
            if r == rank:
                return range(first, first + n)
            first += n
        return range(0)

    def _exit_package(self) -> dict[int, list[int]]:
        assert self.coordinator is not None
        return self.coordinator.map_id_list(range(self.coordinator.total))


class SynchronousServerManager(ServerManager):
    """Synchronous rounds: activate the sampled clients, aggregate their updates, repeat.

    Args:
        network: the server's DistNetwork.
        handler: a SyncParameterServerHandler.
        logger: where to log.
        round_timeout: seconds a round may wait for its updates (None: no deadline beyond the
            network's own timeout).
        on_missing: what to do when the deadline passes or a client process is gone: "finish"
            the round with the updates received (the missing ranks sit out later rounds until
            they answer again), or "error" to stop the run with CommunicationTimeout.
        exit_timeout: seconds to wait for the last rank's exit feedback at shutdown.
    """

    def __init__(
        self,
        network: DistNetwork,
        handler: Any,
        logger: Any = None,
        *,
        round_timeout: float | None = None,
        on_missing: str = "finish",
        exit_timeout: float = 60.0,
    ):
        super().__init__(network, handler, logger)
        if on_missing not in ON_MISSING:
            raise ValueError(f"on_missing must be 'finish' or 'error', got {on_missing!r}")
        if round_timeout is not None and not round_timeout > 0:
            raise ValueError(
                f"round_timeout must be a positive number of seconds or None, got {round_timeout!r}"
            )
        self.round_timeout = round_timeout
        self.on_missing = on_missing
        self.exit_timeout = exit_timeout
        self.dead: set[int] = set()
        self.late: set[int] = set()
        self._rx: Receiver | None = None

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Run rounds until `handler.if_stop`."""
        self._rx = Receiver(self._network)
        while not self._handler.if_stop:
            self._round()

    def _send_round(self, ids: list[int]) -> dict[int, int]:
        assert self.coordinator is not None
        downlink = self._handler.downlink_package
        pending: dict[int, int] = {}
        for rank, local_ids in self.coordinator.map_id_list(ids).items():
            id_tensor = torch.tensor(local_ids, dtype=downlink[0].dtype)
            try:
                self._network.send([id_tensor, *downlink], MessageCode.ParameterUpdate, rank)
            except CommunicationError as err:
                self._lose(rank, f"could not send to it ({err})", dead=True)
                continue
            pending[rank] = len(local_ids)
        return pending

    def _round(self) -> None:
        ids = self._handler.sample_clients()
        self._logger.info(f"round {self._handler.round + 1}: client id list {ids}")
        pending = self._send_round(ids)
        deadline = math.inf if self.round_timeout is None else time.monotonic() + self.round_timeout
        while pending:
            remaining = deadline - time.monotonic()
            try:
                message = self._rx.get(None if math.isinf(remaining) else max(remaining, 0.0))
            except PeerLostError as err:
                pending.pop(err.rank, None)
                self._lose(err.rank, "is gone (its connection closed)", dead=True)
                continue
            if message is None:
                self._missing(pending)
                return
            sender, code, payload = message[:3]
            if code != MessageCode.ParameterUpdate:
                raise CommunicationError(f"Unexpected message code {code} from rank {sender} during a round")
            if sender not in pending:
                self._late_update(sender)
                continue
            before = self._handler.received
            if self._handler._update_global_model(payload):
                return
            pending[sender] -= self._handler.received - before  # a scheduler forwards several uploads
            if pending[sender] <= 0:
                del pending[sender]
        self._handler.finish_round()  # every activated rank answered or was lost

    def _missing(self, pending: dict[int, int]) -> None:
        ranks = sorted(pending)
        text = (
            f"round {self._handler.round + 1}: no update from rank(s) {ranks} within the {self.round_timeout:g} s "
            "round deadline (process dead or stuck)"
        )
        if self.on_missing == "error":
            self._logger.error(text)
            raise CommunicationTimeout(text)
        for rank in ranks:
            self._lose(rank, "missed the round deadline", dead=False)
        self._logger.warning(f"{text}; finishing the round with {self._handler.received} client update(s)")
        self._handler.finish_round()

    def _lose(self, rank: int, why: str, dead: bool) -> None:
        (self.dead if dead else self.late).add(rank)
        self._handler.mark_unavailable(self._global_ids(rank))
        self._logger.error(f"client rank {rank} {why}; its clients are left out of the next rounds")
        if dead and self.on_missing == "error":
            raise CommunicationError(f"client rank {rank} {why}")

    def _late_update(self, rank: int) -> None:
        if rank not in self.late:
            raise CommunicationError(f"rank {rank} sent a ParameterUpdate that the server did not ask for")
        self.late.discard(rank)
        self._handler.unavailable.difference_update(self._global_ids(rank))
        self._logger.warning(f"discarded a late update from rank {rank}; it takes part in rounds again")

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """Send Exit to every client, wait for the exit feedback, then leave the network."""
        try:
            super().shutdown()
        finally:
            if self._rx is not None and self._rx.alive:
                self._logger.warning(
                    "a receive is still pending (a client never answered); torch.distributed cannot cancel it, "
                    "so this process may take up to the network timeout to exit"
                )

    def shutdown_clients(self) -> None:
        """Send ``Exit [all ids of the rank, params]`` to each live rank; wait for rank W-1's Exit."""
        downlink = self._handler.downlink_package
        for rank, local_ids in self._exit_package().items():
            if rank in self.dead:
                continue
            id_tensor = torch.tensor(local_ids, dtype=downlink[0].dtype)
            try:
                self._network.send([id_tensor, *downlink], MessageCode.Exit, rank)
            except CommunicationError as err:
                self.dead.add(rank)
                self._logger.error(f"could not send Exit to rank {rank}: {err}")
        last = self._network.world_size - 1
        if last in self.dead or self._rx is None:
            return
        self._wait_exit_feedback(last)

    def _wait_exit_feedback(self, last: int) -> None:
        assert self._rx is not None
        deadline = time.monotonic() + self.exit_timeout
        while True:
            try:
                message = self._rx.get(max(deadline - time.monotonic(), 0.0))
            except CommunicationError as err:
                self._logger.error(f"waiting for the exit feedback of rank {last} failed: {err}")
                return
            if message is None:
                self._logger.error(f"rank {last} sent no exit feedback within {self.exit_timeout:g} s")
                return
            sender, code = message[:2]
            if code == MessageCode.Exit:
                return
            self._logger.warning(f"ignored {code} from rank {sender} during shutdown")


class AsynchronousServerManager(ServerManager):
    """Asynchronous server: answer ParameterRequests with the model, mix in updates as they come.

    Each update is applied as soon as it is received and the stop condition is checked right
    after it, so no update received before the stop is dropped and the server never blocks in a
    receive after the stop (FedLab 1.2.1 used a queue and an updater thread: B14).

    Args:
        network: the server's DistNetwork.
        handler: an AsyncParameterServerHandler.
        logger: where to log.
    """

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Serve requests and apply updates until `handler.if_stop`."""
        while not self._handler.if_stop:
            sender, code, payload = self._network.recv()
            if code == MessageCode.ParameterRequest:
                self._network.send(self._handler.downlink_package, MessageCode.ParameterUpdate, sender)
            elif code == MessageCode.ParameterUpdate:
                self._handler._update_global_model(payload)
            else:
                raise CommunicationError(f"Unexpected message code {code} from rank {sender}")

    def shutdown_clients(self) -> None:
        """Per rank: take its last update (discarded: it came after the stop) and request, send Exit."""
        gone: set[int] = set()
        for rank in range(1, self._network.world_size):
            try:
                _, code, _ = self._network.recv(src=rank)
                if code == MessageCode.ParameterUpdate:
                    self._logger.info(f"rank {rank}: update received after the stop, not applied")
                    _, code, _ = self._network.recv(src=rank)
                if code != MessageCode.ParameterRequest:
                    self._logger.warning(f"rank {rank} sent {code} during shutdown")
                self._network.send(message_code=MessageCode.Exit, dst=rank)
            except CommunicationError as err:
                gone.add(rank)
                self._logger.error(f"client rank {rank} could not be stopped cleanly: {err}")
        last = self._network.world_size - 1
        if last in gone:
            return
        try:
            _, code, _ = self._network.recv(src=last)
        except CommunicationError as err:
            self._logger.error(f"no exit feedback from rank {last}: {err}")
            return
        if code != MessageCode.Exit:
            self._logger.warning(f"rank {last} sent {code} instead of its exit feedback")

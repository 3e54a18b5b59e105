"""AsynchronousServerManager: FedLab 1.2.1's asynchronous server (requests, updates, `updater_thread`)."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from fastfl.core._updates import message_parts, restore_uplink
from fastfl.core.server._base_manager import PEER_LOST, ServerManager
from fastfl.errors import CommunicationError
from fastfl.utils.message_code import MessageCode

__all__ = ["AsynchronousServerManager", "UpdateQueue"]


class UpdateQueue(queue.Queue):
    """FedLab's `message_queue` (put/get of ``(sender, message_code, payload)``), plus `wait_idle`.

    `wait_idle` returns once the consumer is back in `get` with nothing left to take (so every
    update put before has been applied), or once the consumer thread has ended.
    """

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self._waiting = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the next item (as `queue.Queue.get`)."""
        with self.not_empty:
            self._waiting += 1
            try:
                end = None if timeout is None else time.monotonic() + timeout
                while not self._qsize():
                    if not block:
                        raise queue.Empty
                    left = None if end is None else end - time.monotonic()
                    if left is not None and left <= 0:
                        raise queue.Empty
                    self.not_empty.wait(left)
                item = self._get()
                self.not_full.notify()
                return item
            finally:
                self._waiting -= 1

    def wait_idle(self, consumer: threading.Thread, poll: float = 0.01) -> None:
        """Wait until `consumer` waits in `get` on an empty queue, or has ended."""
        while consumer.is_alive():
            with self.mutex:
                if self._waiting > 0 and not self._qsize():
                    return
            consumer.join(poll)


class AsynchronousServerManager(ServerManager):
    """Asynchronous server: answer ParameterRequests with the model, apply updates as they come.

    As in FedLab 1.2.1, `main_loop` starts `updater_thread` (a daemon thread) and puts each
    ``(sender, message_code, payload)`` update on `message_queue`; `updater_thread` takes them off
    and calls `handler._update_global_model(payload)`. Unlike FedLab (B14), the main loop waits
    after each update until the updater has applied it, so the stop condition is checked right
    after every update: no update received before the stop is dropped, and the server never waits
    in a receive after the stop. A client that cannot be answered (its process died after its
    request) is logged and left out; the others carry on.

    Args:
        network: the server's DistNetwork.
        handler: an AsyncParameterServerHandler, or any handler with FedLab's interface.
        logger: where to log, kept as `_LOGGER`.
    """

    def __init__(self, network: Any, handler: Any, logger: Any = None):
        super().__init__(network, handler, logger)
        self.message_queue = UpdateQueue()
        self.gone: set[int] = set()
        self._updater_error: BaseException | None = None
        self._sent: dict[int, Any] = {}

    def _receive(self) -> Any:
        """The next message, with its metadata when the network gives it (`recv_message`)."""
        recv_message = getattr(self._network, "recv_message", None)
        return recv_message() if recv_message is not None else self._network.recv()

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Serve requests and queue updates for `updater_thread` until `handler.if_stop`."""
        updater = threading.Thread(target=self._run_updater, name="fastfl-updater", daemon=True)
        updater.start()
        while self._handler.if_stop is not True:
            try:
                sender, message_code, payload, meta = message_parts(self._receive())
            except PEER_LOST as err:
                self._client_gone(err.rank, "is gone (its connection closed)")
                continue
            if message_code == MessageCode.ParameterRequest:
                try:
                    downlink_package = self._handler.downlink_package
                    self._sent[sender] = downlink_package[0]  # what a delta uplink is relative to
                    self._network.send(
                        content=downlink_package,
                        message_code=MessageCode.ParameterUpdate,
                        dst=sender,
                    )
                except CommunicationError as err:
                    self._client_gone(sender, f"could not be answered ({err})")
            elif message_code == MessageCode.ParameterUpdate:
                payload, _ = restore_uplink(
                    payload, meta, self._sent.get(sender), getattr(self._network, "wire_dtype", None)
                )
                self.message_queue.put((sender, message_code, payload))
                self.message_queue.wait_idle(updater)
                self._check_updater(updater)
            else:
                raise ValueError(f"Unexpected message code {message_code}.")

    def updater_thread(self) -> None:
        """Take updates off `message_queue` and apply them until `handler.if_stop`."""
        while self._handler.if_stop is not True:
            _, message_code, payload = self.message_queue.get()
            if message_code != MessageCode.ParameterUpdate:
                raise ValueError(f"the update queue holds a {message_code} message")
            self._handler._update_global_model(payload)

    def _run_updater(self) -> None:
        try:
            self.updater_thread()
        except BaseException as err:  # noqa: BLE001 - re-raised in the main loop
            self._updater_error = err

    def _check_updater(self, updater: threading.Thread) -> None:
        if self._updater_error is not None:
            raise self._updater_error
        if not updater.is_alive() and self._handler.if_stop is not True:
            raise RuntimeError("updater_thread returned before the handler's stop condition")

    def _client_gone(self, rank: int, why: str) -> None:
        self.gone.add(rank)
        self._LOGGER.error(f"client rank {rank} {why}; carrying on with the other clients")
        if len(self.gone) >= self._network.world_size - 1:
            raise CommunicationError(f"every client rank is gone (last: rank {rank} {why})")

    def shutdown_clients(self) -> None:
        """Per rank: take its last update (discarded: it came after the stop) and request, send Exit."""
        for rank in range(1, self._network.world_size):
            if rank in self.gone:
                continue
            try:
                _, code, _ = self._network.recv(src=rank)[:3]
                if code == MessageCode.ParameterUpdate:
                    self._LOGGER.info(f"rank {rank}: update received after the stop, not applied")
                    _, code, _ = self._network.recv(src=rank)[:3]
                if code != MessageCode.ParameterRequest:
                    self._LOGGER.warning(f"rank {rank} sent {code} during shutdown")
                self._network.send(message_code=MessageCode.Exit, dst=rank)
            except CommunicationError as err:
                self.gone.add(rank)
                self._LOGGER.error(f"client rank {rank} could not be stopped cleanly: {err}")
        last = self._network.world_size - 1
        if last in self.gone:
            return
        try:
            _, code, _ = self._network.recv(src=last)[:3]
        except CommunicationError as err:
            self._LOGGER.error(f"no exit feedback from rank {last}: {err}")
            return
        if code != MessageCode.Exit:
            self._LOGGER.warning(f"rank {last} sent {code} instead of its exit feedback")

"""A thread that receives packages from any rank into a queue, so the server can wait with a deadline."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from fastfl.errors import CommunicationError
from fastfl.utils.message_code import MessageCode

__all__ = ["Receiver"]

_LOG = logging.getLogger("fastfl.server")


class Receiver:
    """Receive from any rank on a daemon thread; `get` waits for the next package with a timeout.

    The thread stops after it receives an Exit (the last message of a run) or when the network
    fails; a failure is raised from `get`. torch.distributed cannot cancel a pending receive, so
    a receive that never completes (its sender died before sending) keeps the thread waiting until
    the network's own timeout.
    """

    def __init__(self, network: Any):
        self._network = network
        self._queue: queue.Queue[tuple[int, MessageCode, Any] | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="fastfl-server-receiver", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """True while the thread still waits for packages."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                message = self._network.recv()
            except CommunicationError as err:
                self._queue.put(err)
                return
            self._queue.put(message)
            if message[1] == MessageCode.Exit:
                return

    def get(self, timeout: float | None) -> tuple[int, MessageCode, Any] | None:
        """The next package, or None when `timeout` seconds pass first (None waits forever)."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

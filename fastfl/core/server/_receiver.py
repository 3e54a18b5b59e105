"""A thread that receives packages from any rank into a queue, so the server can wait with a deadline.

Besides packages, the queue carries peer losses: the Receiver watches every other rank's
connection (see `DistNetwork.watch_peers`), and when one closes without an Exit having passed
between the two processes, `get` raises `PeerLostError` for that rank, once. Later `get` calls
keep receiving from the other ranks.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from fastfl.core.network import Message
from fastfl.errors import CommunicationError, PeerLostError, WireFormatError
from fastfl.utils.message_code import MessageCode

__all__ = ["LOSS_GRACE", "Receiver"]

_LOG = logging.getLogger("fastfl.server")

LOSS_GRACE = 0.2
"""Seconds a loss waits before it is reported, so that what the peer sent before it died (already
in this process's buffers, but still being unpacked by the receive thread) is handed out first."""


class Receiver:
    """Receive from any rank on a daemon thread; `get` waits for the next package with a timeout.

    The receive thread stops after it receives an Exit (the last message of a run), when the
    network fails, or when a package is refused (`WireFormatError`); the failure is raised from
    `get`. A peer whose connection closes is reported by
    `get` as `PeerLostError(rank)`; the Receiver keeps serving the other ranks. A peer that hangs
    without closing its connection is not detected here: that is what round deadlines are for.
    gloo cannot cancel an any-source receive, so when no Exit comes, the thread stays blocked
    (harmlessly: it is a daemon and nothing can reach it once the network is closed).

    Args:
        network: a connected DistNetwork.
        watch: watch the other ranks' connections (gloo only).
    """

    def __init__(self, network: Any, *, watch: bool = True):
        self._network = network
        self._queue: queue.Queue[Message | BaseException] = queue.Queue()
        self.lost: set[int] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fastfl-server-receiver", daemon=True)
        if watch:
            network.watch_peers(self._on_lost)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """True while the thread still waits for packages."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                message = self._network.recv_message()
            except PeerLostError as err:  # died between a package's header and its body
                self._report(err.rank, str(err))
                continue
            except WireFormatError as err:
                # A package refused from its header leaves its body unsent; the next any-source
                # receive would take those bytes for a frame (gloo aborts the process on that), so
                # a refused package ends this thread: `get` raises the error, the run stops clearly.
                self._queue.put(err)
                return
            except CommunicationError as err:
                self._queue.put(err)
                return
            self._queue.put(message)
            if message.message_code == MessageCode.Exit:
                return

    def _on_lost(self, rank: int, reason: str) -> None:
        if rank in self._network.farewells:
            _LOG.debug("rank %d left after its Exit: %s", rank, reason)
            return
        time.sleep(LOSS_GRACE)
        self._report(rank, f"lost rank {rank}: {reason}")

    def _report(self, rank: int, text: str) -> None:
        with self._lock:
            if rank in self.lost:
                return
            self.lost.add(rank)
        _LOG.warning(text)
        self._queue.put(PeerLostError(rank, text))

    def get(self, timeout: float | None) -> Message | None:
        """The next package, or None when `timeout` seconds pass first (None waits forever).

        Raises:
            PeerLostError: a peer's connection closed (raised once per lost rank).
            CommunicationError: the receive thread failed (it has stopped).
        """
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

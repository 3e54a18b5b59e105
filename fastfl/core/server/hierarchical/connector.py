"""Connectors of a hierarchical Scheduler: one process faces the top server, one its lower clients.

Two queues join them: MQ0 carries traffic up (lower clients -> top server), MQ1 traffic down,
as `(sender, message_code, content, meta)`: a package's metadata (sample counts, a compressed
uplink's delta flag) travels on with it, so weighted FedAvg works across schedulers.
Parameters pass through unchanged: the client id list travels as floats of the parameters' dtype
and fastfl packages keep every tensor's dtype (FedLab 1.2.1 cast the parameters to int32, B5).
Shutdown needs no kill and no sleep: Exit flows down, the lower group's exit feedback flows back
up, and only then does the connector report to the top server.

Faults end in bounded time: a connector whose Scheduler process is gone exits at once; when the
top server is lost, the server connector tells the lower group to exit, then fails; a lost lower
client is logged by name and left out (the top server's round deadline covers its updates).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

import torch

from fastfl.core.coordinator import Coordinator
from fastfl.core.network import DistNetwork
from fastfl.core.network_manager import NetworkManager
from fastfl.core.server._receiver import Receiver
from fastfl.errors import CommunicationError, PeerLostError
from fastfl.utils.message_code import MessageCode

__all__ = ["ClientConnector", "Connector", "ServerConnector"]

PARENT_POLL = 0.2  # seconds between checks that the Scheduler process is still there
EXIT_TIMEOUT = 60.0  # seconds the lower group may take to exit once told to
_PR_SET_PDEATHSIG = 1


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
        self._parent = os.getpid()  # the Scheduler's process: this object is built there

    def run(self) -> None:
        """Run the connector; it exits at once if the Scheduler process that started it dies."""
        if os.getppid() == self._parent:  # forked or spawned by the Scheduler (not by a forkserver)
            _die_with_parent()
        threading.Thread(target=self._watch_parent, name="fastfl-parent-watch", daemon=True).start()
        super().run()

    def _watch_parent(self) -> None:
        while _alive(self._parent):
            time.sleep(PARENT_POLL)
        self._logger.error(f"{type(self).__name__}: the Scheduler process {self._parent} is gone; exiting")
        logging.shutdown()
        os._exit(1)

    def process_message_queue(self) -> None:
        """Forward what arrives on `read_queue` to the network."""
        raise NotImplementedError(f"{type(self).__name__} must define process_message_queue()")

    def process_meessage_queue(self) -> None:
        """FedLab 1.2.1's (misspelt) name of `process_message_queue`."""
        self.process_message_queue()

    def _send(self, content: Any, code: MessageCode, dst: int, meta: Any) -> None:
        """Send with the package metadata when there is any (a FedLab-style network has no `meta`)."""
        if meta:
            self._network.send(content, code, dst, meta=meta)
        else:
            self._network.send(content, code, dst)

    def _forwarder(self) -> threading.Thread:
        thread = threading.Thread(
            target=self.process_message_queue, name=f"{type(self).__name__}-queue", daemon=True
        )
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
        """Pass the top server's packages down until Exit; then wait for the lower group to finish.

        Raises:
            PeerLostError: the top server was lost (the lower group has been told to exit).
        """
        thread = self._forwarder()
        while True:
            try:
                sender, code, payload, meta = self._network.recv_message(src=0)
            except PeerLostError:
                self._logger.error(
                    "server connector: lost the top server (upper rank 0); stopping the lower group"
                )
                self.mq_write.put((0, MessageCode.Exit, None))
                thread.join(EXIT_TIMEOUT)
                raise
            self.mq_write.put((sender, code, payload, meta))
            if code == MessageCode.Exit:
                thread.join(EXIT_TIMEOUT)
                if thread.is_alive():
                    self._logger.error(
                        f"server connector: the lower group did not exit within {EXIT_TIMEOUT:g} s"
                    )
                if self._network.rank == self._network.world_size - 1:
                    self._network.send(None, MessageCode.Exit, 0)
                self._logger.info("server connector: exit")
                break

    def process_message_queue(self) -> None:
        """Send the lower clients' uploads to the top server until the lower group has exited."""
        while True:
            item = self.mq_read.get()
            code, payload, meta = item[1], item[2], _meta_of(item)
            if code == MessageCode.Exit:
                return
            try:
                self._send(payload, code, 0, meta)
            except CommunicationError as err:  # the top server is gone: main_loop reports it
                self._logger.error(f"server connector: could not forward an upload: {err}")


class ClientConnector(Connector):
    """The Scheduler's face to its lower clients: rank 0 of the lower group."""

    def __init__(self, network: DistNetwork, write_queue: Any, read_queue: Any, logger: Any = None):
        super().__init__(network, write_queue, read_queue, logger)
        self.dead: set[int] = set()  # lower ranks whose connection closed
        self._told_exit = threading.Event()

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
        rx = Receiver(self._network)
        thread = self._forwarder()
        last = self._network.world_size - 1
        deadline = float("inf")
        while time.monotonic() < deadline:
            try:
                message = rx.get(PARENT_POLL)
            except PeerLostError as err:
                self.dead.add(err.rank)
                self._logger.error(
                    f"client connector: lost lower rank {err.rank}; its clients send no more updates"
                )
                message = None
            if self._told_exit.is_set() and deadline == float("inf"):
                deadline = time.monotonic() + EXIT_TIMEOUT
            if message is None:
                if self._told_exit.is_set() and last in self.dead:
                    break  # no exit feedback will come
                continue
            sender, code, payload = message[:3]
            if code == MessageCode.Exit:
                break
            self.mq_write.put((sender, code, payload, _meta_of(message)))
        else:
            self._logger.error(
                f"client connector: no exit feedback from lower rank {last} within {EXIT_TIMEOUT:g} s"
            )
        thread.join(EXIT_TIMEOUT)
        self.mq_write.put((None, MessageCode.Exit, None))

    def process_message_queue(self) -> None:
        """Map the top server's group-level ids to lower ranks and send each its share."""
        while True:
            item = self.mq_read.get()
            code, payload, meta = item[1], item[2], _meta_of(item)
            if payload is None:  # the top server was lost: every lower rank is told to exit
                ids, rest = list(range(self.group_client_num)), []
            else:
                ids = [int(i) for i in payload[0].reshape(-1).tolist()]
                rest = list(payload[1:])
            dtype = rest[0].dtype if rest and rest[0].is_floating_point() else torch.float32
            for rank, local_ids in self.coordinator.map_id_list(ids).items():
                if rank not in self.dead:
                    self._send_down(rank, [torch.tensor(local_ids, dtype=dtype), *rest], code, meta)
            if code == MessageCode.Exit:
                self._told_exit.set()
                return

    def _send_down(self, rank: int, content: list, code: MessageCode, meta: Any) -> None:
        try:
            self._send(content, code, rank, meta)
        except PeerLostError as err:
            self.dead.add(rank)
            self._logger.error(f"client connector: lower rank {rank} is gone: {err}")


def _meta_of(item: Any) -> dict:
    """The metadata of a queued message or a received `Message` (none in a 3-tuple)."""
    return dict(item[3]) if len(item) > 3 and item[3] else {}


def _die_with_parent() -> None:
    """On Linux, have the kernel SIGKILL this process when its parent dies.

    The polling watch is the fallback elsewhere, and covers a parent that died before this call.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the polling watch still works
        return


def _alive(pid: int) -> bool:
    """True while process `pid` exists and has not exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: the signal check above is all there is

"""Server managers: FedLab 1.2.1's server protocol (handshake, rounds, exit) with deadlines and faults.

Fidelity rule (docs/compat.md): FedLab-1.2.1-style code sees FedLab's behaviour. `main_loop` calls
`activate_clients()` once per round and hands every ParameterUpdate's payload, unchanged, to
`handler._update_global_model(payload)` until it returns True (a compressed uplink's deltas,
marked ``uplink_delta``, first get the model sent to that rank added back: parameters again); `shutdown` calls
`shutdown_clients()`. A manager talks to its handler only through the interface documented in
`fastfl.core.server._base_handler` (FedLab's names), and uses fastfl's extras (metadata with
sample counts, partial rounds, skipping lost ranks) only when the handler has them.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from fastfl import errors
from fastfl.core._updates import message_parts, restore_uplink
from fastfl.core.network import DistNetwork
from fastfl.core.server._async_manager import AsynchronousServerManager
from fastfl.core.server._base_manager import DEFAULT_SERVER_RANK, PEER_LOST, ServerManager
from fastfl.core.server._receiver import Receiver
from fastfl.core.server._rounds import RoundClock, RoundState
from fastfl.errors import CommunicationError
from fastfl.utils.message_code import MessageCode

__all__ = ["DEFAULT_SERVER_RANK", "AsynchronousServerManager", "ServerManager", "SynchronousServerManager"]

ON_MISSING = ("finish", "error")


class SynchronousServerManager(ServerManager):
    """Synchronous rounds: activate the sampled clients, hand their updates to the handler, repeat.

    Args:
        network: the server's DistNetwork.
        handler: a SyncParameterServerHandler, or any handler with FedLab's interface.
        logger: where to log.
        round_timeout: seconds a round may wait for its updates. "auto" (default): the first
            round may take the network's timeout, later ones `round_timeout_factor` × the
            slowest complete round so far, but at least `round_timeout_floor`. None: only the
            network's own timeout bounds a round.
        on_missing: what to do when the deadline passes or a client process is lost: "finish"
            the round with the updates received (the handler needs `finish_round`; the missing
            ranks sit out later rounds until they answer again), or "error" to stop the run.
        exit_timeout: seconds to wait for the last rank's exit feedback at shutdown.
        round_timeout_floor: the shortest automatic deadline, in seconds.
        round_timeout_factor: the automatic deadline as a multiple of the slowest round.
    """

    def __init__(
        self,
        network: DistNetwork,
        handler: Any,
        logger: Any = None,
        *,
        round_timeout: float | str | None = "auto",
        on_missing: str = "finish",
        exit_timeout: float = 60.0,
        round_timeout_floor: float = 60.0,
        round_timeout_factor: float = 4.0,
    ):
        super().__init__(network, handler, logger)
        if on_missing not in ON_MISSING:
            raise ValueError(f"on_missing must be 'finish' or 'error', got {on_missing!r}")
        self.clock = RoundClock(round_timeout, round_timeout_floor, round_timeout_factor)
        self.on_missing = on_missing
        self.exit_timeout = exit_timeout
        self.dead: set[int] = set()
        self.late: set[int] = set()
        self._rx: Receiver | None = None
        self._activated: dict[int, int] | None = None
        self._unreached: set[int] = set()
        self._sent: dict[int, Any] = {}

    @property
    def round_timeout(self) -> float | str | None:
        """The `round_timeout` setting ("auto", seconds, or None)."""
        return self.clock.setting

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """Run rounds until `handler.if_stop`: `activate_clients()`, then updates to the handler."""
        self._rx = Receiver(self._network)
        while self._handler.if_stop is not True:
            self._round()

    def activate_clients(self) -> None:
        """Sample this round's clients (`handler.sample_clients`) and send each rank its ids and model.

        Each activated rank gets ``ParameterUpdate [local ids, *handler.downlink_package]``
        (`downlink_package` is read once per rank, as FedLab does). A rank that cannot be reached
        is logged and left out.
        """
        self._LOGGER.info("Client activation procedure")
        clients_this_round = self._handler.sample_clients()
        rank_dict = self.coordinator.map_id_list(clients_this_round)
        self._LOGGER.info(f"Client id list: {clients_this_round}")
        activated: dict[int, int] = {}
        self._unreached: set[int] = set()
        self._sent = {}
        for rank, values in rank_dict.items():
            downlink_package = list(self._handler.downlink_package)
            self._sent[rank] = downlink_package[0]  # a reference: what a delta uplink is relative to
            id_list = torch.tensor(values, dtype=downlink_package[0].dtype)
            try:
                self._network.send(
                    content=[id_list, *downlink_package], message_code=MessageCode.ParameterUpdate, dst=rank
                )
            except CommunicationError as err:
                self._unreached.add(rank)
                self._lose(rank, f"could not be sent its round ({err})", dead=True)
                continue
            activated[rank] = len(values)
        self._activated = activated

    def _round(self) -> None:
        self._activated, self._unreached, self._sent = None, set(), {}
        started = time.monotonic()
        self.activate_clients()
        state = RoundState(self._activated, self.dead | self.late)
        state.missing.update(self._unreached)
        if state.settled:  # no rank could be reached
            self._finish_partial(state)
            return
        deadline = started + self.clock.deadline(self._network)
        while True:
            try:
                remaining = deadline - time.monotonic()
                message = self._rx.get(None if math.isinf(remaining) else max(remaining, 0.0))
            except PEER_LOST as err:
                self._lose(err.rank, "is gone (its connection closed)", dead=True)
                state.lost(err.rank)
                if state.settled:
                    self._finish_partial(state)
                    return
                continue
            if message is None:
                self._missing(state)
                return
            sender, code, payload, meta = message_parts(message)
            if code != MessageCode.ParameterUpdate:
                raise CommunicationError(f"Unexpected message code {code} from rank {sender} during a round")
            if sender in self.late:
                self._late_update(sender)
                continue
            payload, meta = self._restore(sender, payload, meta)
            receive_meta = getattr(self._handler, "receive_meta", None)
            if receive_meta is not None:
                receive_meta(meta)
            if self._handler._update_global_model(payload):
                self.clock.observe(time.monotonic() - started)
                return
            state.answered(sender, payload, meta)
            if state.settled:
                self._finish_partial(state)
                return

    def _restore(self, sender: int, payload: Any, meta: dict[str, float]) -> tuple[Any, dict[str, float]]:
        """Parameters from a delta-encoded (compressed) uplink: the model sent to `sender` added back."""
        sent = self._sent.get(sender)
        if sent is None:  # activate_clients is overridden: this round's model, read on demand
            sent = lambda: self._handler.downlink_package[0]
        return restore_uplink(payload, meta, sent, getattr(self._network, "wire_dtype", None))

    def _finish_partial(self, state: RoundState) -> None:
        """End a round in which some activated ranks were lost, with the updates that arrived."""
        finish = getattr(self._handler, "finish_round", None)
        if finish is None:
            raise CommunicationError(
                f"rank(s) {sorted(state.missing)} were lost during the round and the handler has no "
                "finish_round() to end it with the updates that arrived"
            )
        self._LOGGER.warning(f"finishing the round without rank(s) {sorted(state.missing)}")
        finish()

    def _missing(self, state: RoundState) -> None:
        ranks = (
            sorted(state.pending) if state.pending is not None else "unknown (activate_clients is overridden)"
        )
        text = f"no update from rank(s) {ranks} within the round deadline (process dead or stuck)"
        if self.on_missing == "error":
            self._LOGGER.error(text)
            raise errors.CommunicationTimeout(text)
        for rank in state.pending or ():
            self._lose(rank, "missed the round deadline", dead=False)
        state.missing.update(state.pending or ())
        self._finish_partial(state)

    def _lose(self, rank: int, why: str, dead: bool) -> None:
        (self.dead if dead else self.late).add(rank)
        mark = getattr(self._handler, "mark_unavailable", None)
        if mark is not None:
            mark(self._global_ids(rank))
        self._LOGGER.error(f"client rank {rank} {why}; its clients are left out of the next rounds")
        if dead and self.on_missing == "error":
            raise CommunicationError(f"client rank {rank} {why}")

    def _late_update(self, rank: int) -> None:
        self.late.discard(rank)
        mark = getattr(self._handler, "mark_available", None)
        if mark is not None:
            mark(self._global_ids(rank))
        self._LOGGER.warning(f"discarded a late update from rank {rank}; it takes part in rounds again")

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """`shutdown_clients()` (Exit to every client, wait for the feedback), then leave the network."""
        try:
            super().shutdown()
        finally:
            if self._rx is not None and self._rx.alive:
                self._LOGGER.warning(
                    "a receive is still pending (a client never answered); torch.distributed cannot cancel it, "
                    "so it is left on a daemon thread, which does not keep this process from exiting"
                )

    def shutdown_clients(self) -> None:
        """Send ``Exit [all ids of the rank, *downlink_package]`` to each live rank; wait for rank W-1's Exit."""
        rank_dict = self.coordinator.map_id_list(range(self.coordinator.total))
        for rank, values in rank_dict.items():
            if rank in self.dead:
                continue
            downlink_package = list(self._handler.downlink_package)
            id_list = torch.tensor(values, dtype=downlink_package[0].dtype)
            try:
                self._network.send(
                    content=[id_list, *downlink_package], message_code=MessageCode.Exit, dst=rank
                )
            except CommunicationError as err:
                self.dead.add(rank)
                self._LOGGER.error(f"could not send Exit to rank {rank}: {err}")
        last = self._network.world_size - 1
        if last in self.dead:
            return
        if self._rx is None:  # main_loop did not run: no receiver thread owns the receives
            self._rx = Receiver(self._network)
        self._wait_exit_feedback(last)

    def _wait_exit_feedback(self, last: int) -> None:
        deadline = time.monotonic() + self.exit_timeout
        while True:
            try:
                message = self._rx.get(max(deadline - time.monotonic(), 0.0))
            except CommunicationError as err:
                if PEER_LOST and isinstance(err, PEER_LOST) and err.rank != last:
                    continue
                self._LOGGER.error(f"waiting for the exit feedback of rank {last} failed: {err}")
                return
            if message is None:
                self._LOGGER.error(f"rank {last} sent no exit feedback within {self.exit_timeout:g} s")
                return
            sender, code, _, _ = message_parts(message)
            if code == MessageCode.Exit:
                return
            self._LOGGER.warning(f"ignored {code} from rank {sender} during shutdown")

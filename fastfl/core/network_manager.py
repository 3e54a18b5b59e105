"""NetworkManager: a process that owns a DistNetwork and runs setup, main loop and shutdown."""

from __future__ import annotations

import logging
from typing import Any

import torch.multiprocessing as mp

from fastfl.core.network import DistNetwork

__all__ = ["NetworkManager"]


class NetworkManager(mp.Process):
    """Base of the client and server managers: `run()` = `setup()`, `main_loop()`, `shutdown()`.

    `start()` runs it in a child process; calling `run()` runs it in this one. `shutdown()` runs
    even when `setup()` or `main_loop()` raised, so the connection is always closed; the error
    that stopped the run is logged first and re-raised, and an error while shutting down after it
    is only logged (so the user's exception stays the one reported).

    Args:
        network: the DistNetwork this manager talks through.
    """

    _DEFAULT_LOGGER = "fastfl"

    def __init__(self, network: DistNetwork | None) -> None:
        super().__init__()
        self._network = network

    @property
    def _logger(self) -> Any:
        """The older fastfl name of FedLab's `_LOGGER`."""
        return self.__dict__.get("_LOGGER") or logging.getLogger(self._DEFAULT_LOGGER)

    @_logger.setter
    def _logger(self, value: Any) -> None:
        self._LOGGER = value

    def run(self) -> None:
        """Run the manager: set up, loop, and always shut down."""
        try:
            self.setup()
            self.main_loop()
        except BaseException as err:
            _log_error(self._logger, f"{type(self).__name__} stopped by {type(err).__name__}: {err}", err)
            try:
                self.shutdown()
            except BaseException as later:  # noqa: BLE001 - the first error is the one to report
                _log_error(self._logger, f"shutting down after that error also failed: {later!r}", None)
            raise
        self.shutdown()

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Join the network."""
        self._network.init_network_connection()

    def main_loop(self, *args: Any, **kwargs: Any) -> None:
        """The manager's protocol; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define main_loop()")

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """Leave the network."""
        if self._network is not None:
            self._network.close_network_connection()


def _log_error(logger: Any, text: str, err: BaseException | None) -> None:
    """Log at ERROR with the traceback when the logger takes `exc_info` (a FedLab Logger does not)."""
    log = getattr(logger, "error", None) or logger.warning
    if err is None:
        log(text)
        return
    try:
        log(text, exc_info=err)
    except TypeError:
        log(text)

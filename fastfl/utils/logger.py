"""Logger: FedLab 1.2.1's small logging wrapper, without configuring the root logger at import.

FedLab calls `logging.basicConfig` when `fedlab.utils` is imported, which takes over the logging
of any program that imports it. fastfl configures nothing at import. A `Logger` sets up only its
own named logger: level INFO if unset, and, when no handler anywhere would print its records
(the application configured no logging), one stdout handler in FedLab's format.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["FORMAT", "Logger"]

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
DATE_FORMAT = "%H:%M:%S"
DEFAULT_NAME = "fastfl"


class Logger:
    """Print messages to stdout (unless the application configured logging) and optionally a file.

    Args:
        log_name: the logger's name; None uses the "fastfl" logger (FedLab uses the root logger).
        log_file: a file to (over)write with this logger's records, in FedLab's format.
        level: the level set on the logger if it has none yet (INFO, as FedLab).
    """

    def __init__(self, log_name: str | None = None, log_file: str | None = None, level: int = logging.INFO):
        self.name = log_name if log_name is not None else DEFAULT_NAME
        self.logger = logging.getLogger(self.name)
        if self.logger.level == logging.NOTSET:
            self.logger.setLevel(level)
        if not self.logger.hasHandlers():
            stream = logging.StreamHandler(sys.stdout)
            stream.setFormatter(logging.Formatter(FORMAT, datefmt=DATE_FORMAT))
            self.logger.addHandler(stream)
        self._file_handler: logging.FileHandler | None = None
        if log_file is not None:
            handler = logging.FileHandler(log_file, mode="w")
            handler.setLevel(logging.INFO)
            handler.setFormatter(logging.Formatter(FORMAT))
            self.logger.addHandler(handler)
            self._file_handler = handler

    def debug(self, msg: str, *args: object) -> None:
        """Log `msg % args` at DEBUG level."""
        self.logger.debug(msg, *args)

    def info(self, log_str: str, *args: object) -> None:
        """Log `log_str % args` at INFO level."""
        self.logger.info(log_str, *args)

    def warning(self, warning_str: str, *args: object) -> None:
        """Log `warning_str % args` at WARNING level."""
        self.logger.warning(warning_str, *args)

    def error(self, msg: str, *args: object) -> None:
        """Log `msg % args` at ERROR level."""
        self.logger.error(msg, *args)

    def close(self) -> None:
        """Detach and close the log file (if any); the logger keeps printing elsewhere."""
        if self._file_handler is not None:
            self.logger.removeHandler(self._file_handler)
            self._file_handler.close()
            self._file_handler = None

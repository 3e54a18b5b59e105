"""AsyncParameterServerHandler: FedAsync mixing with staleness-adapted weights."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fastfl import ops
from fastfl.core._updates import UpdateFormatError
from fastfl.core.model_maintainer import read_params, write_params_
from fastfl.core.server._base_handler import ParameterServerBackendHandler

__all__ = ["STRATEGIES", "AsyncParameterServerHandler", "staleness_weight"]

STRATEGIES = ("constant", "hinge", "polynomial")
HINGE_VARIANTS = ("paper", "fedlab")


def staleness_weight(
    alpha: float, staleness: float, strategy: str, a: float, b: float, hinge: str = "paper"
) -> float:
    """Return the mixing weight α_t for an update `staleness` versions old.

    constant: α. hinge: α if s <= b, else α / (a(s - b) + 1) (the FedAsync paper), or with
    ``hinge="fedlab"`` FedLab 1.2.1's α / (a(s - b + 1)). polynomial: α (s + 1)^(-a).

    Raises:
        ValueError: unknown strategy or hinge variant, or negative staleness (the client's model
            time is ahead of the server's).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if hinge not in HINGE_VARIANTS:
        raise ValueError(f"Invalid hinge variant {hinge!r}; use 'paper' or 'fedlab'")
    if staleness < 0:
        raise ValueError(
            f"staleness {staleness} is negative: the client reported a model time ahead of the server's"
        )
    if strategy == "constant":
        return float(alpha)
    if strategy == "hinge":
        if staleness <= b:
            return float(alpha)
        if hinge == "paper":
            return float(alpha) / (a * (staleness - b) + 1.0)
        return float(alpha) / (a * ((staleness - b) + 1.0))
    return float(alpha) * (staleness + 1.0) ** (-a)


class AsyncParameterServerHandler(ParameterServerBackendHandler):
    """Asynchronous FedAvg (FedAsync): mix each arriving model into the global one.

    Args:
        model: the global model (not copied).
        alpha: the base mixing weight in [0, 1].
        total_time: stop once the server's model time reaches this (time starts at 1).
        strategy: "constant", "hinge" or "polynomial" staleness adaptation.
        cuda: keep the model on a CUDA device.
        logger: where to log.
        a: the staleness parameter a (FedLab: fixed at 10).
        b: the hinge parameter b (FedLab: fixed at 4).
        hinge: "paper" for α/(a(s-b)+1), "fedlab" for FedLab 1.2.1's α/(a(s-b+1)).
        strict_staleness: raise UpdateFormatError when a client reports a model time ahead of
            the server's. By default (as FedLab) the update is mixed in, with the weight of
            staleness 0 and one warning.
    """

    def __init__(
        self,
        model: nn.Module,
        alpha: float,
        total_time: int,
        strategy: str = "constant",
        cuda: bool = False,
        logger: Any = None,
        *,
        a: float = 10,
        b: float = 4,
        hinge: str = "paper",
        strict_staleness: bool = False,
    ):
        super().__init__(model, cuda)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        staleness_weight(alpha, 0, strategy, a, b, hinge)  # validates strategy and hinge now
        self._LOGGER = logger if logger is not None else logging.getLogger("fastfl.server")
        self.client_num_in_total = 0
        self.time = 1
        self.total_time = total_time
        self.alpha = alpha
        self.strategy = strategy
        self.a, self.b, self.hinge = a, b, hinge
        self.strict_staleness = strict_staleness
        self.last_alpha: float | None = None
        self._warned_ahead = False
        self._lock = threading.Lock()
        self._flat = read_params(self._model)

    @property
    def if_stop(self) -> bool:
        """True once the model time reaches `total_time`."""
        return self.time >= self.total_time

    @property
    def downlink_package(self) -> list[Tensor]:
        """``[global params, Tensor([time])]`` (a consistent snapshot)."""
        with self._lock:
            return [read_params(self._model), torch.tensor([float(self.time)])]

    def _adapt_alpha(self, receive_model_time: float) -> float:
        """The mixing weight for an update trained from model time `receive_model_time`.

        A time ahead of the server's (negative staleness) gets the weight of staleness 0, which is
        FedLab's value for "constant" and "hinge" (FedLab's "polynomial" divides by zero or gives
        a weight above α there), with one warning; `strict_staleness` makes it an error.
        """
        staleness = self.time - receive_model_time
        if staleness < 0:
            text = (
                f"a client reported model time {receive_model_time:g}, ahead of the server's {self.time}; "
                "its update is mixed in as if its staleness were 0"
            )
            if self.strict_staleness:
                raise UpdateFormatError(text.split(";")[0] + " (strict_staleness=True)")
            if not self._warned_ahead:
                self._LOGGER.warning(text + " (warned once)")
                self._warned_ahead = True
            staleness = 0
        return staleness_weight(self.alpha, staleness, self.strategy, self.a, self.b, self.hinge)

    def _update_global_model(self, payload: Sequence[Tensor]) -> None:
        """Mix ``payload[0]`` (trained from model time ``payload[1]``) into the global model."""
        if payload is None or len(payload) < 2:
            raise UpdateFormatError("an asynchronous update must be [params, Tensor([model time])]")
        params, model_time = payload[0].reshape(-1), float(payload[1].reshape(-1)[0])
        if params.numel() != self._flat.numel():
            raise UpdateFormatError(
                f"uploaded model has {params.numel()} elements, the global model {self._flat.numel()}"
            )
        with self._lock:
            alpha_t = self._adapt_alpha(model_time)
            read_params(self._model, out=self._flat)
            ops.mix_(self._flat, params.to(self._flat.dtype), alpha_t)
            write_params_(self._model, self._flat)
            self.last_alpha = alpha_t
            self.time += 1

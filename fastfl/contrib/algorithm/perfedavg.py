"""Per-FedAvg (Fallah et al. 2020): MAML-style FedAvg whose model adapts to a client in one step."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler
from fastfl.ops import optim

__all__ = ["PerFedAvgClientTrainer", "PerFedAvgSerialClientTrainer", "PerFedAvgServerHandler"]

VARIANTS = {"fo": 2, "hf": 3}  # batches per local step


class PerFedAvgSerialClientTrainer(AlgorithmSerialTrainer):
    """Per-FedAvg's clients: local steps on F_k(w) = f_k(w - alpha grad f_k(w)).

    Each step takes batches D, D' (and D'' for "hf") from the client's stream of batches:
    tmp = w - alpha g(w; D); FO: w -= beta g(tmp; D'); HF: w -= beta (g(tmp; D') - alpha
    H(w; D'') g(tmp; D')), the Hessian-vector product by central differences with step `delta`
    (Fallah et al.'s Hessian-free variant). beta is ``args["lr"]``. The personalised model of a
    client is `adapt(client, x)`: one gradient step of size alpha on its whole training set.
    Trains one client at a time (each step needs gradients at several points).

    Args:
        alpha: the adaptation (inner) step size.
        variant: "fo" (first order) or "hf" (Hessian-free).
        delta: the finite-difference step of the Hessian-vector product.
        **kwargs: as `AlgorithmSerialTrainer`.
    """

    plain_sgd = False

    def __init__(
        self, *args: Any, alpha: float = 0.01, variant: str = "fo", delta: float = 1e-3, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be 'fo' or 'hf', got {variant!r}")
        if not alpha >= 0 or not delta > 0:
            raise ValueError(f"alpha must be >= 0 and delta > 0, got alpha={alpha!r}, delta={delta!r}")
        self.alpha, self.variant, self.delta = float(alpha), variant, float(delta)
        self._bufs = torch.empty(0)

    def _grad_at(self, batch: tuple[Tensor, Tensor], out: Tensor | None = None) -> Tensor:
        """The loss gradient at the current flat parameters on one batch (into `out`, or the grad buffer)."""
        inputs, labels = batch
        if self.cuda:
            inputs, labels = inputs.to(self.gpu), labels.to(self.gpu)
        self._grad.zero_()
        loss = self._criterion(self._model(inputs), labels)
        loss.backward()
        self._last_loss = float(loss.detach())
        return self._grad if out is None else out.copy_(self._grad)

    def _train_client(self, client: int, x: Tensor, loader: Iterable, epochs: int) -> tuple[int, int]:
        self._model.train()
        need = VARIANTS[self.variant]
        if self._bufs.shape != (3, x.numel()) or self._bufs.device != x.device:
            self._bufs = torch.empty(3, x.numel(), dtype=torch.float32, device=x.device)
        saved, g2, hvp = self._bufs[0], self._bufs[1], self._bufs[2]
        beta, steps, loss_sum = float(self.args["lr"]), 0, 0.0
        seen = 0
        for group in _groups(_stream(loader, epochs), need):
            if steps == 0:
                seen = sum(len(b[1]) for b in group)
            saved.copy_(self._flat)
            self._flat.sub_(self._grad_at(group[0]), alpha=self.alpha)  # tmp = w - alpha g(w; D)
            self._grad_at(group[1], out=g2)
            loss_sum += self._last_loss
            if self.variant == "fo":
                self._flat.copy_(saved)
                optim.local_step_(self._flat, g2, beta)
            else:
                torch.add(saved, g2, alpha=self.delta, out=self._flat)
                self._grad_at(group[2], out=hvp)
                torch.sub(saved, g2, alpha=self.delta, out=self._flat)
                hvp.sub_(self._grad_at(group[2])).mul_(-self.alpha / (2.0 * self.delta))  # -alpha H g2
                self._flat.copy_(saved)
                optim.local_step_(self._flat, g2, beta, lin=hvp)
            steps += 1
        self.losses.append(loss_sum / steps if steps else float("nan"))
        return steps, seen

    def adapt(self, client: int, x: Tensor) -> Tensor:
        """Client `client`'s personalised parameters: x - alpha grad f_k(x) on its whole training set."""
        x = x.reshape(-1).to(self._flat.device, torch.float32)
        self._load_params_(x)
        total = torch.zeros_like(self._flat)
        count = 0
        for inputs, labels in self._eval_batches(client):
            self._grad_at((inputs, labels))
            total.add_(self._grad, alpha=len(labels))
            count += len(labels)
        return x - (self.alpha / max(count, 1)) * total


def _stream(loader: Iterable, epochs: int) -> Iterator[Any]:
    return itertools.chain.from_iterable(loader for _ in range(epochs))


def _groups(batches: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while True:
        group = list(itertools.islice(batches, size))
        if len(group) < size:
            return
        yield group


class PerFedAvgServerHandler(AlgorithmServerHandler):
    """Per-FedAvg's server: the sample-weighted average, as FedAvg."""


PerFedAvgClientTrainer = one_client(PerFedAvgSerialClientTrainer, "PerFedAvgClientTrainer")

"""Many clients' plain-SGD training as one vmapped computation over stacked parameters.

Used by `SubsetSerialTrainer(batch_clients=N)`. Every client of a group has the same number of
samples, so all take batches of the same shapes at the same step: the group trains as one model
whose parameters carry a leading client dimension [C, ...] (torch.func: functional_call, grad,
vmap). Clients with different sample counts go into different groups; no padding or masking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from fastfl import ops

if TYPE_CHECKING:
    from fastfl.core.client._fused import FusedSGD

__all__ = ["VectorizedSGD", "train_clients"]


class VectorizedSGD:
    """Plain SGD with cross-entropy for C clients at once, all starting from the same parameters.

    Only trainable parameters are stacked and updated; buffers and frozen parameters are shared
    (read-only). A model whose forward cannot run under vmap (BatchNorm in train mode, Dropout,
    in-place writes to buffers) is reported by `supports` and must be trained one client at a time.

    Args:
        model: the model (its structure and non-trainable tensors are used, its values are not).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.names = [n for n, p in model.named_parameters()]
        self.trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        self._step: Callable | None = None

    def _fixed(self) -> dict[str, Tensor]:
        fixed = {n: p.detach() for n, p in self.model.named_parameters() if not p.requires_grad}
        fixed.update(dict(self.model.named_buffers()))
        return fixed

    def _loss_grad(self) -> Callable:
        if self._step is None:
            model = self.model

            def loss(params: dict[str, Tensor], fixed: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
                out = functional_call(model, {**fixed, **params}, (x,))
                return nn.functional.cross_entropy(out, y)

            self._step = vmap(grad_and_value(loss), in_dims=(0, None, 0, 0))
        return self._step

    def supports(self, x: Tensor, y: Tensor) -> str | None:
        """Try one vmapped step on a sample batch; return None if it runs, else the reason."""
        params = {n: p.detach()[None].clone() for n, p in self.model.named_parameters() if p.requires_grad}
        try:
            self._loss_grad()(params, self._fixed(), x[None], y[None])
        except (RuntimeError, TypeError, ValueError) as err:  # vmap/functional_call refused the model
            return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return None

    def train(
        self,
        flat: Tensor,
        inputs: Tensor,
        labels: Tensor,
        orders: list[list[Tensor]],
        batch_size: int,
        lr: float,
        out: Tensor,
    ) -> Tensor:
        """Train C clients from the flat global parameters; write their flat parameters into `out`.

        Args:
            flat: the global parameters, flattened in `model.parameters()` order.
            inputs: the data set's inputs (indexed by `orders`).
            labels: the data set's labels.
            orders: per client, per epoch, its sample indices in visiting order (all of one length).
            batch_size: samples per batch (the last batch of an epoch may be smaller).
            lr: the SGD learning rate.
            out: [C, numel] destination (rows contiguous), also the working storage.

        Returns:
            The per-client mean loss over all steps ([C]; NaN when there are no steps).
        """
        clients, epochs = len(orders), len(orders[0]) if orders else 0
        shapes = dict(self.model.named_parameters())
        device = next(iter(shapes.values())).device if shapes else out.device
        work = out if out.device == device else torch.empty_like(out, device=device)
        work.copy_(flat.reshape(1, -1).expand(clients, -1))  # every client starts from `flat`
        params, offset = {}, 0
        for name in self.names:  # trainable parameters are views of the client rows: no copy back
            n = shapes[name].numel()
            if name in self.trainable:
                params[name] = work[:, offset : offset + n].view(clients, *shapes[name].shape)
            offset += n
        fixed = {**self._fixed()}
        step = self._loss_grad()
        loss_sum, steps = torch.zeros(clients, device=device), 0
        for epoch in range(epochs):
            idx = torch.stack([orders[c][epoch] for c in range(clients)])
            xs = inputs[idx].to(device)
            ys = labels[idx].to(device)
            for start in range(0, idx.shape[1], batch_size):
                grads, loss = step(
                    params, fixed, xs[:, start : start + batch_size], ys[:, start : start + batch_size]
                )
                torch._foreach_add_(list(params.values()), [grads[n] for n in params], alpha=-lr)
                loss_sum += loss.detach()
                steps += 1
        if work is not out:
            out.copy_(work)
        return loss_sum.cpu() / steps if steps else torch.full((clients,), float("nan"))


def train_clients(
    vsgd: VectorizedSGD | FusedSGD,
    flat: Tensor,
    data: tuple[Tensor, Tensor],
    orders: list[list[Tensor]],
    counts: list[int],
    rows: Tensor,
    *,
    batch_size: int,
    lr: float,
    chunk: int,
    aggregate: bool,
) -> Tensor:
    """Train clients from `flat`, grouped by sample count and vmapped (or fused) `chunk` at a time.

    Client k's trained vector goes to ``rows[k]``, or, with `aggregate`, the sample-weighted mean
    of all of them goes to ``rows[0]``. Returns each client's mean training loss.
    """
    groups: dict[int, list[int]] = {}
    for k, n in enumerate(counts):
        groups.setdefault(n, []).append(k)
    numel = flat.numel()
    acc = torch.zeros(numel, dtype=torch.float32) if aggregate else None
    losses = torch.empty(len(counts))
    inputs, labels = data
    scratch = torch.empty(0, dtype=rows.dtype)
    for n, members in groups.items():
        for start in range(0, len(members), chunk):
            part = members[start : start + chunk]
            first, size = part[0], len(part)
            in_place = acc is None and part == list(range(first, first + size))
            if in_place:  # the rows are consecutive: train straight in the uplink rows
                out = rows[first : first + size]
            else:
                if scratch.numel() < size * numel:
                    scratch = ops.empty(size * numel, dtype=rows.dtype)  # huge pages / warm pool
                out = scratch[: size * numel].view(size, numel)
            part_loss = vsgd.train(flat, inputs, labels, [orders[k] for k in part], batch_size, lr, out)
            positions = torch.tensor(part)
            losses[positions] = part_loss
            if acc is not None:
                acc.add_(out.to(torch.float32).sum(0), alpha=float(n))
            elif not in_place:
                rows.index_copy_(0, positions, out)
    if acc is not None:
        total = float(sum(counts))
        rows[0].copy_(acc.mul_(1.0 / total) if total > 0 else acc)
    return losses

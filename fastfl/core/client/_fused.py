"""Hand-fused plain-SGD training of Linear/ReLU stacks with cross-entropy, many clients at once.

Used by `SubsetSerialTrainer`'s batched mode in place of `VectorizedSGD` when the model is an
`nn.Sequential` of `nn.Linear` (with or without bias) and `nn.ReLU` (an `nn.Flatten` allowed
first) or a bare `nn.Linear`, all parameters trainable fp32 on the CPU. For such a model the step is a few batched
GEMMs with no autograd graph and no torch.func: forward `baddbmm` + in-place ReLU, the
cross-entropy gradient as softmax minus one-hot over the batch, backward `bmm`, and the SGD update
folded into the weight-gradient GEMM (``W.baddbmm_(dZ^T, H, alpha=-lr)``). The GEMMs are the
autograd step's own, so results equal it up to float rounding; the batches, their order and the
partial last batch are exactly `VectorizedSGD.train`'s (same `orders`, same slicing).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["FusedSGD", "fused_sgd", "linear_plan"]


class Layer(NamedTuple):
    """One Linear layer of the plan: its parameter names and whether a ReLU follows it."""

    weight: str
    bias: str | None
    relu: bool


def _leaves(module: nn.Module) -> list[nn.Module] | None:
    """The modules a Sequential runs, nested Sequentials flattened; None for anything else."""
    if type(module) is nn.Linear:  # a bare Linear (logistic regression) is a stack of one
        return [module]
    if type(module) is not nn.Sequential:
        return None
    out: list[nn.Module] = []
    for child in module:
        inner = _leaves(child) if type(child) is nn.Sequential else [child]
        if inner is None:
            return None
        out += inner
    return out


def _hooked(module: nn.Module) -> bool:
    """Whether a hook could change the forward or backward (the fused step runs no hooks)."""
    g = torch.nn.modules.module
    if (
        g._global_forward_hooks
        or g._global_forward_pre_hooks
        or g._global_backward_hooks
        or g._global_backward_pre_hooks
    ):
        return True
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for m in module.modules()
    )


def linear_plan(model: nn.Module) -> tuple[bool, list[Layer]] | None:
    """(flatten first, layers) when `model` is a supported Linear/ReLU stack, else None.

    Exact types only (a subclass or a parametrized Linear may compute something else), no hooks,
    every parameter a trainable fp32 CPU tensor, and a ReLU only right after a Linear.
    """
    leaves = _leaves(model)
    if not leaves or _hooked(model) or len({id(m) for m in leaves}) != len(leaves):
        return None  # a module used twice shares its weights across steps of one pass
    params = list(model.parameters())
    if not all(p.requires_grad and p.dtype == torch.float32 and p.device.type == "cpu" for p in params):
        return None
    flatten = type(leaves[0]) is nn.Flatten
    if flatten and (leaves[0].start_dim, leaves[0].end_dim) != (1, -1):
        return None
    names = {id(p): n for n, p in model.named_parameters()}
    layers: list[Layer] = []
    for m in leaves[int(flatten) :]:
        if type(m) is nn.Linear:
            bias = names[id(m.bias)] if m.bias is not None else None
            layers.append(Layer(names[id(m.weight)], bias, False))
        elif type(m) is nn.ReLU and layers and not layers[-1].relu:
            layers[-1] = layers[-1]._replace(relu=True)
        else:
            return None
    used = [n for layer in layers for n in (layer.weight, layer.bias) if n is not None]
    if not layers or len(set(used)) != len(used):
        return None  # a parameter shared between layers
    return flatten, layers


class FusedSGD:
    """`VectorizedSGD.train` for a model `linear_plan` accepts, without autograd.

    Args:
        model: the model (its structure is used, not its values).
        plan: ``linear_plan(model)``.
    """

    def __init__(self, model: nn.Module, plan: tuple[bool, list[Layer]]):
        self.flatten, self.layers = plan
        self.shapes = {n: p.shape for n, p in model.named_parameters()}
        self.classes = model.get_parameter(self.layers[-1].weight).shape[0]
        self.in_features = model.get_parameter(self.layers[0].weight).shape[1]

    def supports(self, inputs: Tensor, labels: Tensor) -> str | None:
        """None when the whole data set fits the fused step, else why not."""
        # Each sample's features as the first Linear sees them (Flatten: all but the batch dim).
        features = list(inputs.shape[1:]) if not self.flatten else [math.prod(inputs.shape[1:])]
        if inputs.dtype != torch.float32 or inputs.device.type != "cpu":
            return "the inputs are not fp32 CPU tensors"
        if inputs.dim() < 2 or features != [self.in_features]:
            return "the inputs' shape does not match the first Linear"
        if labels.dtype != torch.int64 or labels.dim() != 1:
            return "the labels are not 1-D class indices"
        if len(labels) and not (int(labels.min()) >= 0 and int(labels.max()) < self.classes):
            return "a label is outside the classes (cross-entropy's ignore_index or an error)"
        return None

    def _views(self, work: Tensor, clients: int) -> dict[str, Tensor]:
        views, offset = {}, 0
        for name, shape in self.shapes.items():  # flat layout = named_parameters() order
            n = shape.numel()
            views[name] = work[:, offset : offset + n].view(clients, *shape)
            offset += n
        return views

    def _step(self, p: dict[str, Tensor], x: Tensor, y: Tensor, lr: float) -> Tensor:
        """One SGD step of every client on its batch x [C, b, in], y [C, b]; returns the [C] losses."""
        acts = [x]
        for layer in self.layers:
            w = p[layer.weight]
            if layer.bias is None:
                z = torch.bmm(acts[-1], w.mT)
            else:
                z = torch.baddbmm(p[layer.bias].unsqueeze(1), acts[-1], w.mT)
            acts.append(z.relu_() if layer.relu else z)
        logits = acts.pop()
        logp = torch.log_softmax(logits, dim=2)
        target = y.unsqueeze(2)
        loss = logp.gather(2, target).mean(1).squeeze(1).neg()
        # d(mean CE)/d logits = (softmax - one-hot) / b; ReLU on the logits masks it too.
        grad = logp.exp_().scatter_add_(2, target, torch.full_like(target, -1, dtype=logp.dtype))
        grad.mul_(1.0 / x.shape[1])
        if self.layers[-1].relu:
            grad = torch.ops.aten.threshold_backward(grad, logits, 0.0)
        for i in range(len(self.layers) - 1, -1, -1):
            layer, h = self.layers[i], acts[i]
            w = p[layer.weight]
            # The input gradient uses W before its update, so it comes first.
            back = torch.bmm(grad, w) if i > 0 else None
            if back is not None and self.layers[i - 1].relu:  # ReLU's backward, as autograd's
                back = torch.ops.aten.threshold_backward(back, h, 0.0)
            w.baddbmm_(grad.mT, h, alpha=-lr)
            if layer.bias is not None:
                p[layer.bias].sub_(grad.sum(1), alpha=lr)
            grad = back
        return loss

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
        """Train C clients from `flat` into `out` [C, numel]; see `VectorizedSGD.train`."""
        clients, epochs = len(orders), len(orders[0]) if orders else 0
        out.copy_(flat.reshape(1, -1).expand(clients, -1))  # every client starts from `flat`
        params = self._views(out, clients)
        loss_sum, steps = torch.zeros(clients), 0
        with torch.no_grad():
            for epoch in range(epochs):
                idx = torch.stack([orders[c][epoch] for c in range(clients)])
                for start in range(0, idx.shape[1], batch_size):
                    # Gathered per batch, not per epoch: the batch is still in cache for the GEMMs.
                    part = idx[:, start : start + batch_size]
                    x = inputs.index_select(0, part.reshape(-1)).view(*part.shape, -1)
                    loss_sum += self._step(params, x, labels[part], lr)
                    steps += 1
        return loss_sum / steps if steps else torch.full((clients,), float("nan"))


def fused_sgd(
    model: nn.Module, criterion: nn.Module, tensors: tuple[Tensor, ...], cuda: bool
) -> FusedSGD | None:
    """A `FusedSGD` when it computes what the autograd step computes for this setup, else None.

    The criterion must be plain mean cross-entropy (no class weights, no label smoothing, the
    default ignore_index with labels that are all classes) and the model and data on the CPU.
    """
    if cuda or len(tensors) != 2 or type(criterion) is not nn.CrossEntropyLoss:
        return None
    if criterion.weight is not None or criterion.reduction != "mean" or criterion.label_smoothing != 0.0:
        return None
    if criterion.ignore_index != -100:
        return None
    plan = linear_plan(model)
    if plan is None:
        return None
    fused = FusedSGD(model, plan)
    return fused if fused.supports(*tensors) is None else None

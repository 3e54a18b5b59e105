"""FedLab 1.2.1's algorithms, rewritten faithfully, as the baselines every benchmark compares with.

Each function does what FedLab 1.2.1 does, operation for operation (same temporaries, same
copies), so its time is FedLab's time without importing FedLab. `matches_fedlab()` checks the
results against the real `fedlab` package when it is installed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def serialize_model(model: nn.Module) -> Tensor:
    """SerializationTool.serialize_model: cat of every param.data.view(-1), then .cpu()."""
    return torch.cat([p.data.view(-1) for p in model.parameters()]).cpu()


def deserialize_model(model: nn.Module, serialized_parameters: Tensor, mode: str = "copy") -> None:
    """SerializationTool.deserialize_model: a Python loop of copy_/add_ over the parameters."""
    index = 0
    for p in model.parameters():
        numel = p.data.numel()
        piece = serialized_parameters[index : index + numel].view(p.data.size())
        if mode == "copy":
            p.data.copy_(piece)
        elif mode == "add":
            p.data.add_(piece)
        else:
            raise ValueError(f'Invalid deserialize mode {mode}, require "copy" or "add" ')
        index += numel


def fedavg_aggregate(serialized_params_list: Sequence[Tensor], weights=None) -> Tensor:
    """Aggregators.fedavg_aggregate: stack(dim=-1) * normalised weights, then sum(-1)."""
    if weights is None:
        weights = torch.ones(len(serialized_params_list))
    if not isinstance(weights, Tensor):
        weights = torch.tensor(weights)
    weights = weights / torch.sum(weights)
    if not torch.all(weights >= 0):
        raise ValueError("weights should be non-negative values")
    return torch.sum(torch.stack(list(serialized_params_list), dim=-1) * weights, dim=-1)


def fedasync_aggregate(server_param: Tensor, new_param: Tensor, alpha: float) -> Tensor:
    """Aggregators.fedasync_aggregate: (1 - alpha) * server + alpha * new, with two temporaries."""
    return torch.mul(1 - alpha, server_param) + torch.mul(alpha, new_param)


class Package:
    """The content-building half of FedLab's Package: one torch.cat per appended tensor."""

    def __init__(self) -> None:
        self.slices: list[int] = []
        self.content: Tensor | None = None
        self.dtype: torch.dtype | None = None

    def append_tensor(self, tensor: Tensor) -> None:
        """Append one tensor: re-copy everything gathered so far plus the new tensor."""
        shape = list(tensor.shape)
        flat = tensor.view(-1)
        if self.content is None:
            self.content = copy.deepcopy(flat)
            self.dtype = flat.dtype
        else:
            self.content = torch.cat((self.content, flat.to(self.dtype)))
        self.slices += [tensor.numel(), len(shape), *shape]

    def append_tensor_list(self, tensors: Sequence[Tensor]) -> None:
        """Append each tensor in order."""
        for t in tensors:
            self.append_tensor(t)


def matches_fedlab() -> bool | None:
    """Compare every baseline with the real FedLab 1.2.1 on small inputs.

    Returns:
        None if FedLab does not import here, else True when all results are identical.
    """
    try:
        from fedlab.core.communicator.package import Package as FedLabPackage
        from fedlab.utils.aggregator import Aggregators
        from fedlab.utils.serialization import SerializationTool
    except ImportError:
        return None
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    flat = torch.randn(sum(p.numel() for p in model.parameters()), generator=gen)
    xs = [torch.randn(7, generator=gen) for _ in range(3)]
    twin = copy.deepcopy(model)
    deserialize_model(model, flat, "add")
    SerializationTool.deserialize_model(twin, flat, "add")
    ours, theirs = Package(), FedLabPackage()
    ours.append_tensor_list([*xs, torch.ones(2, 2, dtype=torch.float64)])
    theirs.append_tensor_list([*xs, torch.ones(2, 2, dtype=torch.float64)])
    checks = [
        torch.equal(serialize_model(model), SerializationTool.serialize_model(twin)),
        torch.equal(fedavg_aggregate(xs, [1.0, 2.0, 3.0]), Aggregators.fedavg_aggregate(xs, [1.0, 2.0, 3.0])),
        torch.equal(fedavg_aggregate(xs), Aggregators.fedavg_aggregate(xs)),
        torch.equal(fedasync_aggregate(xs[0], xs[1], 0.3), Aggregators.fedasync_aggregate(xs[0], xs[1], 0.3)),
        torch.equal(ours.content, theirs.content) and ours.slices == theirs.slices,
    ]
    return all(checks)

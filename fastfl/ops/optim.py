"""Optimizer kernels over flat float32 buffers: the memory-bound passes of the FL algorithms.

Three kernels, each one pass over memory, on the backend `fastfl.ops` uses (CUDA tensors go to
the torch backend, the readable reference):

- `local_step_`: w -= lr * (g + mu * (w - anchor) + lin), the client's SGD step with FedProx's or
  Ditto's proximal term (mu, anchor), SCAFFOLD's correction (lin = c - c_i) or FedDyn's linear
  term (lin = -grad L_k, mu = alpha).
- `control_update_`: state <- state - shift + scale * (x - y), optionally writing the change into
  `delta` (SCAFFOLD's c_i update and its uplink Delta c_i; FedDyn's grad L_k update).
- `server_step_`: the server optimizer steps of FedAvgM and FedOpt (Adam, Yogi, Adagrad) on the
  pseudo-gradient delta (the averaged client change, a direction to move in).

Every argument is validated here (float32, contiguous, one device, equal sizes, finite scalars);
the backends may assume it.
"""

from __future__ import annotations

import math
from types import ModuleType

import torch
from torch import Tensor

import fastfl.ops as _ops
from fastfl.errors import KernelArgumentError
from fastfl.ops import _check

__all__ = ["SERVER_OPTIMIZERS", "control_update_", "local_step_", "server_step_"]

SERVER_OPTIMIZERS = {"momentum": 0, "adam": 1, "yogi": 2, "adagrad": 3}
_F32 = (torch.float32,)


def _impl(device: torch.device | None) -> ModuleType:
    return _ops._pick(device)


def _buffers(named: dict[str, Tensor | None], like: str) -> torch.device | None:
    """Check that every non-None tensor is a contiguous float32 buffer the size of `like`."""
    ref = named[like]
    present: dict[str, list[Tensor]] = {}
    for name, t in named.items():
        if t is None:
            continue
        _check.tensor(t, name)
        _check.floating(t, name, _F32)
        _check.same_numel(t, ref, name, like)  # type: ignore[arg-type]
        present[name] = [t]
    return _check.device_of(present)


def _scalar(value: float, name: str) -> float:
    (v,) = _check.weight_list([value], 1, name)
    return v


def local_step_(
    w: Tensor,
    g: Tensor,
    lr: float,
    *,
    anchor: Tensor | None = None,
    mu: float = 0.0,
    lin: Tensor | None = None,
) -> Tensor:
    """Compute w -= lr * (g + mu * (w - anchor) + lin) in place; return w.

    Args:
        w: the flat parameters (float32, updated in place).
        g: the flat gradient.
        lr: the learning rate.
        anchor: the proximal centre (needed when mu != 0).
        mu: the proximal coefficient.
        lin: a linear correction added to the gradient (None: none).
    """
    lr, mu = _scalar(lr, "lr"), _scalar(mu, "mu")
    if mu != 0.0 and anchor is None:
        raise KernelArgumentError(f"mu={mu} needs an anchor (the proximal centre)")
    device = _buffers({"w": w, "g": g, "anchor": anchor, "lin": lin}, "w")
    _impl(device).optim_local_step(w, g, anchor if mu != 0.0 else None, lin, lr, mu)
    return w


def control_update_(
    state: Tensor,
    x: Tensor,
    y: Tensor,
    scale: float,
    *,
    shift: Tensor | None = None,
    delta: Tensor | None = None,
) -> Tensor:
    """Compute state <- state - shift + scale * (x - y) in place; return state.

    Args:
        state: the per-client buffer (float32, updated in place), e.g. SCAFFOLD's c_i.
        x: the start point (e.g. the received global model).
        y: the end point (e.g. the trained local model).
        scale: the factor of (x - y), e.g. 1 / (steps * lr).
        shift: subtracted from the state (e.g. the server control variate c); None: nothing.
        delta: if given, receives new state - old state.
    """
    scale = _scalar(scale, "scale")
    device = _buffers({"state": state, "x": x, "y": y, "shift": shift, "delta": delta}, "state")
    _impl(device).optim_control_update(state, x, y, shift, delta, scale)
    return state


def server_step_(
    x: Tensor,
    delta: Tensor,
    m: Tensor,
    v: Tensor | None = None,
    *,
    kind: str,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> Tensor:
    """One server optimizer step on the pseudo-gradient `delta` (Reddi et al. 2021; Hsu et al. 2019).

    momentum: m = beta1 m + delta; x += lr m.
    adam: m = beta1 m + (1 - beta1) delta; v = beta2 v + (1 - beta2) delta^2; x += lr m / (sqrt(v) + tau).
    yogi: as adam with v = v - (1 - beta2) delta^2 sign(v - delta^2).
    adagrad: as adam with v = v + delta^2.

    Returns:
        x, updated in place (m and v too).
    """
    if kind not in SERVER_OPTIMIZERS:
        raise KernelArgumentError(f"kind must be one of {', '.join(SERVER_OPTIMIZERS)}, got {kind!r}")
    if kind != "momentum" and v is None:
        raise KernelArgumentError(f"server optimizer {kind!r} needs the second-moment buffer v")
    values = [_scalar(s, n) for s, n in ((lr, "lr"), (beta1, "beta1"), (beta2, "beta2"), (tau, "tau"))]
    if kind != "momentum" and not (values[3] > 0 and math.isfinite(values[3])):
        raise KernelArgumentError(f"tau must be > 0 for {kind!r}, got {tau!r}")
    device = _buffers({"x": x, "delta": delta, "m": m, "v": v if kind != "momentum" else None}, "x")
    _impl(device).optim_server_step(x, delta, m, v, SERVER_OPTIMIZERS[kind], *values)
    return x

"""FedLab 1.2.1's documented manager, handler and trainer names exist in fastfl with compatible signatures."""

from __future__ import annotations

import importlib
import inspect

import pytest

pytest.importorskip("fedlab.core.server.manager")

CLASSES = {
    "core.network_manager": ["NetworkManager"],
    "core.model_maintainer": ["ModelMaintainer"],
    "core.coordinator": ["Coordinator"],
    "core.server.manager": ["ServerManager", "SynchronousServerManager", "AsynchronousServerManager"],
    "core.server.handler": [
        "ParameterServerBackendHandler",
        "SyncParameterServerHandler",
        "AsyncParameterServerHandler",
    ],
    "core.client.manager": ["ClientManager", "PassiveClientManager", "ActiveClientManager"],
    "core.client.trainer": ["ClientTrainer", "SGDClientTrainer"],
    "core.client.serial_trainer": ["SerialTrainer", "SubsetSerialTrainer"],
}
PROTECTED = {"_update_global_model", "_adapt_alpha", "_train_alone", "_get_dataloader"}
CASES = [(module, name) for module, names in CLASSES.items() for name in names]
_PROCESS = set(dir(importlib.import_module("torch.multiprocessing").Process))


def _members(cls: type) -> dict[str, object]:
    """FedLab's public and documented-protected members of `cls` (inherited ones too, not Process's)."""
    out = {}
    for name in dir(cls):
        if (name.startswith("_") and name not in PROTECTED and name != "__init__") or (
            name in _PROCESS and name not in {"__init__", "run"}
        ):
            continue
        out[name] = inspect.getattr_static(cls, name)
    return out


def _compatible(theirs: inspect.Signature, ours: inspect.Signature) -> str | None:
    """None when every call FedLab's signature accepts binds the same way to ours, else why not."""
    mine = list(ours.parameters.values())
    named = [p for p in theirs.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for i, p in enumerate(named):
        if i >= len(mine) or mine[i].name != p.name:
            has_var = any(q.kind in (q.VAR_POSITIONAL, q.VAR_KEYWORD) for q in mine)
            if has_var and all(q.name != p.name for q in mine):
                continue  # *args/**kwargs take it, as FedLab's own base method does
            return f"parameter {i} is {mine[i].name if i < len(mine) else None!r}, FedLab's {p.name!r}"
        if mine[i].kind != p.kind:
            return f"{p.name!r} is {mine[i].kind.description}, FedLab's {p.kind.description}"
        d_theirs, d_ours = p.default, mine[i].default
        if (
            d_theirs is not p.empty
            and d_ours != d_theirs
            and not (d_ours is None and isinstance(d_theirs, dict))
        ):
            return f"{p.name!r} defaults to {d_ours!r}, FedLab's to {d_theirs!r}"
    for q in mine[len(named) :]:
        if q.kind == q.POSITIONAL_OR_KEYWORD and q.default is q.empty:
            return f"extra required parameter {q.name!r}"
    return None


@pytest.mark.parametrize(("module", "name"), CASES, ids=[n for _, n in CASES])
def test_fedlab_names_exist_with_compatible_signatures(module, name):
    theirs_cls = getattr(importlib.import_module(f"fedlab.{module}"), name)
    ours_cls = getattr(importlib.import_module(f"fastfl.{module}"), name)
    assert [b.__name__ for b in theirs_cls.__mro__ if b.__module__.startswith("fedlab")] == [
        b.__name__
        for b in ours_cls.__mro__
        if b.__module__.startswith("fastfl") and not b.__name__.startswith("_")
    ][: len([b for b in theirs_cls.__mro__ if b.__module__.startswith("fedlab")])]
    problems = []
    for member, theirs in _members(theirs_cls).items():
        if not hasattr(ours_cls, member):
            problems.append(f"{member}: missing")
            continue
        ours = inspect.getattr_static(ours_cls, member)
        if isinstance(theirs, property) != isinstance(ours, property):
            problems.append(f"{member}: property in one package only")
            continue
        if callable(theirs) and callable(ours):
            why = _compatible(inspect.signature(theirs), inspect.signature(ours))
            if why:
                problems.append(f"{member}: {why}")
    assert not problems, f"{name}: " + "; ".join(problems)


def test_instances_carry_fedlabs_attributes():
    from torch import nn

    from fastfl.core.client import SERIAL_TRAINER, SGDClientTrainer, SubsetSerialTrainer
    from fastfl.core.server import (
        AsynchronousServerManager,
        SynchronousServerManager,
        SyncParameterServerHandler,
    )

    model = nn.Linear(2, 2)
    trainer = SGDClientTrainer(model, [], 1, None, None)
    serial = SubsetSerialTrainer(model, None, [[0], [1]])
    handler = SyncParameterServerHandler(model, 1, 0.5)
    for obj in (trainer, serial, handler, SynchronousServerManager(None, handler)):
        assert hasattr(obj._LOGGER, "info")
    assert (serial.type, serial.client_num, serial.param_list) == (SERIAL_TRAINER, 2, [])
    manager = AsynchronousServerManager(None, handler)
    assert callable(manager.updater_thread) and hasattr(manager.message_queue, "put")
    assert callable(SynchronousServerManager(None, handler).activate_clients)

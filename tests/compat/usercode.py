"""FedLab-1.2.1-style user code, written once and run on `fedlab` and on `fastfl` (`build(lib)`).

Everything inside `build` is what a FedLab 1.2.1 user writes (tutorial and example patterns):
a FedProx trainer subclass, a custom aggregation handler, a handler from the tutorial, a server
manager with its own `main_loop`, a client manager with its own `setup`/`main_loop`. Only the
package name differs between the two runs.
"""

from __future__ import annotations

import importlib
import random
import threading
from collections import Counter
from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CALLS: Counter = Counter()  # hook call counts, per process


def data(n: int = 120, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return TensorDataset(x, y)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))


def build(lib: str) -> SimpleNamespace:
    """Import FedLab's names from `lib` ("fedlab" or "fastfl") and define the user classes on them."""
    mod = lambda path: importlib.import_module(f"{lib}.{path}")
    ClientManager = mod("core.client.manager").PassiveClientManager
    SGDClientTrainer = mod("core.client.trainer").SGDClientTrainer
    SubsetSerialTrainer = mod("core.client.serial_trainer").SubsetSerialTrainer
    handler_mod = mod("core.server.handler")
    SyncParameterServerHandler = handler_mod.SyncParameterServerHandler
    ParameterServerBackendHandler = handler_mod.ParameterServerBackendHandler
    SynchronousServerManager = mod("core.server.manager").SynchronousServerManager
    DistNetwork = mod("core.network").DistNetwork
    utils = mod("utils")
    Aggregators, SerializationTool, MessageCode, Logger = (
        utils.Aggregators,
        utils.SerializationTool,
        utils.MessageCode,
        utils.Logger,
    )
    functional = mod("utils.functional")

    class FedProxTrainer(SGDClientTrainer):
        """FedProx's local objective, as FedLab users write it (uses self._LOGGER)."""

        def __init__(self, model, data_loader, epochs, optimizer, criterion, mu=0.1, cuda=False, logger=None):
            super().__init__(model, data_loader, epochs, optimizer, criterion, cuda=cuda, logger=logger)
            self.mu = mu

        def train(self, model_parameters) -> None:
            CALLS["train"] += 1
            SerializationTool.deserialize_model(self._model, model_parameters)
            frozen = [p.detach().clone() for p in self._model.parameters()]
            self._LOGGER.info("Local train procedure is running")
            for _ in range(self.epochs):
                self._model.train()
                for inputs, labels in self._data_loader:
                    outputs = self._model(inputs)
                    proximal = sum(
                        (w - w0).norm(2) ** 2 for w, w0 in zip(self._model.parameters(), frozen, strict=True)
                    )
                    loss = self.criterion(outputs, labels) + 0.5 * self.mu * proximal
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()
            self._LOGGER.info("Local train procedure is finished")

    class MedianHandler(SyncParameterServerHandler):
        """A custom aggregation: FedLab's own `_update_global_model` shape, with a coordinate-wise median."""

        def _update_global_model(self, payload):
            CALLS["update"] += 1
            assert len(payload) > 0
            if len(payload) == 1:
                self.client_buffer_cache.append(payload[0].clone())
            else:
                self.client_buffer_cache += payload
            if len(self.client_buffer_cache) == self.client_num_per_round:
                stacked = torch.stack(self.client_buffer_cache)
                mean = Aggregators.fedavg_aggregate(self.client_buffer_cache)
                new = 0.5 * mean + 0.5 * stacked.median(dim=0).values
                SerializationTool.deserialize_model(self._model, new)
                self.round += 1
                self.client_buffer_cache = []
                return True
            return False

    class TutorialHandler(ParameterServerBackendHandler):
        """A handler written from FedLab's tutorial: only the documented interface."""

        def __init__(self, model, global_round, sample_ratio):
            super().__init__(model)
            self.client_num_in_total = 0
            self.sample_ratio = sample_ratio
            self.global_round = global_round
            self.round = 0
            self.cache = []

        @property
        def downlink_package(self):
            CALLS["downlink"] += 1
            return [self.model_parameters]

        @property
        def if_stop(self):
            return self.round >= self.global_round

        @property
        def client_num_per_round(self):
            return max(1, int(self.sample_ratio * self.client_num_in_total))

        def sample_clients(self):
            CALLS["sample"] += 1
            return random.sample(range(self.client_num_in_total), self.client_num_per_round)

        def _update_global_model(self, payload):
            CALLS["update"] += 1
            self.cache.append(payload[0].clone())
            if len(self.cache) == self.client_num_per_round:
                SerializationTool.deserialize_model(self._model, Aggregators.fedavg_aggregate(self.cache))
                self.round += 1
                self.cache = []
                return True
            return False

    class CountingServerManager(SynchronousServerManager):
        """Stock main loop; `activate_clients` overridden (the override must be called)."""

        def activate_clients(self):
            CALLS["activate"] += 1
            super().activate_clients()

    class LoopServerManager(CountingServerManager):
        """A custom `main_loop` written as FedLab's, using `activate_clients` in a thread."""

        def main_loop(self):
            while self._handler.if_stop is not True:
                activate = threading.Thread(target=self.activate_clients)
                activate.start()
                while True:
                    _, message_code, payload = self._network.recv()
                    if message_code == MessageCode.ParameterUpdate:
                        if self._handler._update_global_model(payload):
                            break
                    else:
                        raise RuntimeError(f"Unexpected message code {message_code}")
                activate.join()

    class TutorialClientManager(ClientManager):
        """A client manager with its own `setup` and `main_loop` (FedLab tutorial style)."""

        def setup(self):
            self._network.init_network_connection()
            tensor = torch.Tensor([self._trainer.client_num]).int()
            self._network.send(content=tensor, message_code=MessageCode.SetUp, dst=0)

        def main_loop(self):
            while True:
                _, message_code, payload = self._network.recv(src=0)
                if message_code == MessageCode.Exit:
                    if self._network.rank == self._network.world_size - 1:
                        self._network.send(message_code=MessageCode.Exit, dst=0)
                    break
                if message_code == MessageCode.ParameterUpdate:
                    id_list, payload = payload[0].to(torch.int32).tolist(), payload[1:]
                    assert len(id_list) == 1
                    self._trainer.local_process(payload=payload)
                    self.synchronize()

    return SimpleNamespace(**{k: v for k, v in locals().items() if k[0].isupper() or k == "functional"})


def fedprox_client(ns: SimpleNamespace, shard: int) -> object:
    """A FedProx trainer over one deterministic shard of `data()`."""
    torch.manual_seed(10 + shard)
    model = mlp()
    x, y = data().tensors
    part = TensorDataset(x[shard * 40 : shard * 40 + 40], y[shard * 40 : shard * 40 + 40])
    loader = DataLoader(part, batch_size=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return ns.FedProxTrainer(model, loader, 2, opt, nn.CrossEntropyLoss(), mu=0.05, logger=ns.Logger())

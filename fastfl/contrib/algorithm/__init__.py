"""FL algorithms as trainer/handler pairs (FedLab 1.3's `fedlab.contrib.algorithm` names), by name.

Every algorithm has a serial trainer (many clients per process), a one-client trainer and a
server handler, usable standalone (trainer and handler in one process) and across processes
through the stock managers. `get_algorithm(name)` returns its `Algorithm` record: the classes and
the hyperparameters with their defaults. Every trainer and handler has `state_dict()` and
`load_state_dict()` for resumable runs.

Synchronous handlers take ``(model, global_round, sample_ratio, cuda=False, logger=None, *,
hyperparameters...)`` and run under `SynchronousServerManager`; asynchronous ones
(``Algorithm.asynchronous``) take ``(model, total_time, cuda=False, logger=None, *, ...)`` and run
under `AsynchronousServerManager`. Serial trainers take ``(model, dataset, data_slices,
logger=None, cuda=False, args=None, *, ...)`` like `SubsetSerialTrainer`.
"""

from __future__ import annotations

from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, ClientBank
from fastfl.contrib.algorithm._registry import ALGORITHMS, Algorithm, get_algorithm, register_algorithm
from fastfl.contrib.algorithm._server import AlgorithmServerHandler
from fastfl.contrib.algorithm.ditto import DittoClientTrainer, DittoSerialClientTrainer, DittoServerHandler
from fastfl.contrib.algorithm.fedasync import (
    AsyncServerHandler,
    FedAsyncClientTrainer,
    FedAsyncSerialClientTrainer,
)
from fastfl.contrib.algorithm.fedavg import (
    FedAvgClientTrainer,
    FedAvgSerialClientTrainer,
    FedAvgServerHandler,
)
from fastfl.contrib.algorithm.fedbuff import (
    FedBuffClientTrainer,
    FedBuffSerialClientTrainer,
    FedBuffServerHandler,
)
from fastfl.contrib.algorithm.feddyn import (
    FedDynClientTrainer,
    FedDynSerialClientTrainer,
    FedDynServerHandler,
)
from fastfl.contrib.algorithm.fednova import (
    FedNovaClientTrainer,
    FedNovaSerialClientTrainer,
    FedNovaServerHandler,
)
from fastfl.contrib.algorithm.fedopt import FedAvgMServerHandler, FedOptServerHandler
from fastfl.contrib.algorithm.fedprox import (
    FedProxClientTrainer,
    FedProxSerialClientTrainer,
    FedProxServerHandler,
)
from fastfl.contrib.algorithm.perfedavg import (
    PerFedAvgClientTrainer,
    PerFedAvgSerialClientTrainer,
    PerFedAvgServerHandler,
)
from fastfl.contrib.algorithm.qfedavg import (
    qFedAvgClientTrainer,
    qFedAvgSerialClientTrainer,
    qFedAvgServerHandler,
)
from fastfl.contrib.algorithm.scaffold import (
    ScaffoldClientTrainer,
    ScaffoldSerialClientTrainer,
    ScaffoldServerHandler,
)
from fastfl.contrib.algorithm.staleness import fedasync_staleness, fedbuff_staleness

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "AlgorithmSerialTrainer",
    "AlgorithmServerHandler",
    "AsyncServerHandler",
    "ClientBank",
    "DittoClientTrainer",
    "DittoSerialClientTrainer",
    "DittoServerHandler",
    "FedAsyncClientTrainer",
    "FedAsyncSerialClientTrainer",
    "FedAvgClientTrainer",
    "FedAvgMServerHandler",
    "FedAvgSerialClientTrainer",
    "FedAvgServerHandler",
    "FedBuffClientTrainer",
    "FedBuffSerialClientTrainer",
    "FedBuffServerHandler",
    "FedDynClientTrainer",
    "FedDynSerialClientTrainer",
    "FedDynServerHandler",
    "FedNovaClientTrainer",
    "FedNovaSerialClientTrainer",
    "FedNovaServerHandler",
    "FedOptServerHandler",
    "FedProxClientTrainer",
    "FedProxSerialClientTrainer",
    "FedProxServerHandler",
    "PerFedAvgClientTrainer",
    "PerFedAvgSerialClientTrainer",
    "PerFedAvgServerHandler",
    "ScaffoldClientTrainer",
    "ScaffoldSerialClientTrainer",
    "ScaffoldServerHandler",
    "fedasync_staleness",
    "fedbuff_staleness",
    "get_algorithm",
    "qFedAvgClientTrainer",
    "qFedAvgSerialClientTrainer",
    "qFedAvgServerHandler",
    "register_algorithm",
]

_FEDAVG = (FedAvgSerialClientTrainer, FedAvgClientTrainer)
for _entry in (
    Algorithm("fedavg", FedAvgServerHandler, *_FEDAVG, {"weighted": True}),
    Algorithm("fedprox", FedProxServerHandler, FedProxSerialClientTrainer, FedProxClientTrainer, {"weighted": True, "mu": 0.01}),
    Algorithm(
        "scaffold", ScaffoldServerHandler, ScaffoldSerialClientTrainer, ScaffoldClientTrainer,
        {"weighted": False, "server_lr": 1.0},
    ),
    Algorithm(
        "feddyn", FedDynServerHandler, FedDynSerialClientTrainer, FedDynClientTrainer,
        {"weighted": False, "alpha": 0.01},
    ),
    Algorithm("fednova", FedNovaServerHandler, FedNovaSerialClientTrainer, FedNovaClientTrainer, {"weighted": True}),
    Algorithm(
        "qfedavg", qFedAvgServerHandler, qFedAvgSerialClientTrainer, qFedAvgClientTrainer,
        {"q": 1.0, "sampling": "uniform", "sample_weights": None},
    ),
    Algorithm("fedavgm", FedAvgMServerHandler, *_FEDAVG, {"weighted": True, "server_lr": 1.0, "momentum": 0.9}),
    Algorithm(
        "fedopt", FedOptServerHandler, *_FEDAVG,
        {"weighted": True, "option": "adam", "server_lr": 0.01, "beta1": 0.9, "beta2": 0.99, "tau": 1e-3},
    ),
    Algorithm("ditto", DittoServerHandler, DittoSerialClientTrainer, DittoClientTrainer, {"weighted": True, "lam": 0.1}),
    Algorithm(
        "perfedavg", PerFedAvgServerHandler, PerFedAvgSerialClientTrainer, PerFedAvgClientTrainer,
        {"weighted": True, "alpha": 0.01, "variant": "fo", "delta": 1e-3},
    ),
    Algorithm(
        "fedasync", AsyncServerHandler, FedAsyncSerialClientTrainer, FedAsyncClientTrainer,
        {"alpha": 0.5, "strategy": "constant", "a": 10.0, "b": 4.0}, asynchronous=True,
    ),
    Algorithm(
        "fedbuff", FedBuffServerHandler, FedBuffSerialClientTrainer, FedBuffClientTrainer,
        {"buffer_size": 10, "server_lr": 1.0, "staleness": "sqrt", "a": 10.0, "b": 4.0}, asynchronous=True,
    ),
):  # fmt: skip
    register_algorithm(_entry)

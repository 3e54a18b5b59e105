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

from fastfl.contrib.algorithm._registry import ALGORITHMS, Algorithm, get_algorithm, register_algorithm
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
from fastfl.contrib.algorithm.feddyn import (
    FedDynClientTrainer,
    FedDynSerialClientTrainer,
    FedDynServerHandler,
)
from fastfl.contrib.algorithm.fedprox import (
    FedProxClientTrainer,
    FedProxSerialClientTrainer,
    FedProxServerHandler,
)
from fastfl.contrib.algorithm.scaffold import (
    ScaffoldClientTrainer,
    ScaffoldSerialClientTrainer,
    ScaffoldServerHandler,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "AsyncServerHandler",
    "FedAsyncClientTrainer",
    "FedAsyncSerialClientTrainer",
    "FedAvgClientTrainer",
    "FedAvgSerialClientTrainer",
    "FedAvgServerHandler",
    "FedDynClientTrainer",
    "FedDynSerialClientTrainer",
    "FedDynServerHandler",
    "FedProxClientTrainer",
    "FedProxSerialClientTrainer",
    "FedProxServerHandler",
    "ScaffoldClientTrainer",
    "ScaffoldSerialClientTrainer",
    "ScaffoldServerHandler",
    "get_algorithm",
    "register_algorithm",
]

_SYNC = {"weighted": True}
for _entry in (
    Algorithm("fedavg", FedAvgServerHandler, FedAvgSerialClientTrainer, FedAvgClientTrainer, dict(_SYNC)),
    Algorithm("fedprox", FedProxServerHandler, FedProxSerialClientTrainer, FedProxClientTrainer, {**_SYNC, "mu": 0.01}),
    Algorithm(
        "scaffold", ScaffoldServerHandler, ScaffoldSerialClientTrainer, ScaffoldClientTrainer,
        {"weighted": False, "server_lr": 1.0},
    ),
    Algorithm(
        "feddyn", FedDynServerHandler, FedDynSerialClientTrainer, FedDynClientTrainer,
        {"weighted": False, "alpha": 0.01},
    ),
    Algorithm(
        "fedasync", AsyncServerHandler, FedAsyncSerialClientTrainer, FedAsyncClientTrainer,
        {"alpha": 0.5, "strategy": "constant", "a": 10.0, "b": 4.0}, asynchronous=True,
    ),
):  # fmt: skip
    register_algorithm(_entry)

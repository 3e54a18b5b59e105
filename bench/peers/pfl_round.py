"""Issue 12's simulation workloads on Apple's pfl-research (`pfl`), run inside `.peers/pfl`.

pfl's simulation as its PyTorch tutorials write it: a `torch.nn.Module` with `loss` and `metrics`
methods wrapped in `PyTorchModel` (local `torch.optim.SGD`, central SGD with learning rate 1.0,
which applies the averaged model difference: FedAvg), a `FederatedDataset.from_slices` of the
clients' data with the `minimize_reuse` user sampler, a `SimulatedBackend`, and
`FederatedAveraging().run(...)` with `NNAlgorithmParams` / `NNTrainHyperParams`. Evaluation runs
only in the first (warm-up) round; a callback stamps the time after each central iteration.

    .peers/pfl/bin/python bench/peers/pfl_round.py gemm --rounds 5
"""

from __future__ import annotations

import itertools
import sys
import time
from importlib.metadata import version
from pathlib import Path

import torch
from pfl.aggregate.simulate import SimulatedBackend
from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
from pfl.callback.base import TrainingProcessCallback
from pfl.data.federated_dataset import FederatedDataset
from pfl.data.sampling import get_user_sampler
from pfl.hyperparam import NNTrainHyperParams
from pfl.metrics import Metrics, Weighted
from pfl.model.pytorch import PyTorchModel
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _workload import Runner, Workload, main, mlp


class PflMLP(nn.Sequential):
    """The workload's MLP with the `loss` and `metrics` methods pfl's `PyTorchModel` calls."""

    def loss(self, x, y, eval=False):
        self.eval() if eval else self.train()
        return nn.functional.cross_entropy(self(x), y)

    @torch.no_grad()
    def metrics(self, x, y, eval=False):
        self.eval() if eval else self.train()
        loss = nn.functional.cross_entropy(self(x), y, reduction="sum").item()
        return {"loss": Weighted(loss, len(y))}


class Stamps(TrainingProcessCallback):
    """Records the time after each central iteration."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def after_central_iteration(self, aggregate_metrics, model, *, central_iteration):
        self.stamps.append(time.perf_counter())
        return False, Metrics()


def build(w: Workload) -> tuple[Runner, torch.nn.Module]:
    """pfl's FedAvg over a SimulatedBackend of the workload's clients."""
    torch.manual_seed(0)
    net = mlp(w.hidden, PflMLP)
    model = PyTorchModel(
        model=net,
        local_optimizer_create=torch.optim.SGD,
        central_optimizer=torch.optim.SGD(net.parameters(), lr=1.0),
    )
    users = {i: [w.x[a:b], w.y[a:b]] for i, (a, b) in enumerate(w.slices)}
    data = FederatedDataset.from_slices(users, get_user_sampler("minimize_reuse", list(users)))
    backend = SimulatedBackend(training_data=data, val_data=None, postprocessors=[])
    train_params = NNTrainHyperParams(
        local_learning_rate=w.lr, local_num_epochs=w.epochs, local_batch_size=w.batch
    )
    algorithm = FederatedAveraging()
    stamps = Stamps()

    def rounds(n: int) -> list[float]:
        params = NNAlgorithmParams(
            central_num_iterations=algorithm._current_central_iteration + n,  # run() continues from here
            evaluation_frequency=10**9,  # only iteration 0 (warm-up) evaluates the users
            train_cohort_size=w.per_round,
            val_cohort_size=None,
        )
        stamps.stamps = [time.perf_counter()]
        algorithm.run(
            algorithm_params=params,
            backend=backend,
            model=model,
            model_train_params=train_params,
            callbacks=[stamps],
        )
        return [b - a for a, b in itertools.pairwise(stamps.stamps)]

    return rounds, net


if __name__ == "__main__":
    main("pfl", {"pfl": version("pfl")}, build)

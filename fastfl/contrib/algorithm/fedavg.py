"""FedAvg (McMahan et al. 2017): local SGD, then the sample-weighted average of the models."""

from __future__ import annotations

from fastfl.contrib.algorithm._client import AlgorithmSerialTrainer, one_client
from fastfl.contrib.algorithm._server import AlgorithmServerHandler

__all__ = ["FedAvgClientTrainer", "FedAvgSerialClientTrainer", "FedAvgServerHandler"]


class FedAvgSerialClientTrainer(AlgorithmSerialTrainer):
    """FedAvg's clients: `epochs` epochs of plain SGD; uplink ``[theta_k ..., [n_k ...]]``.

    Vmapped with `batch_clients`. Arguments as `AlgorithmSerialTrainer`.
    """


class FedAvgServerHandler(AlgorithmServerHandler):
    """FedAvg's server: theta <- sum_k n_k theta_k / sum_k n_k (``weighted=False``: the plain mean).

    Also takes the stock trainers' ``[models, counts]`` and FedLab's ``[models]`` uploads.
    """


FedAvgClientTrainer = one_client(FedAvgSerialClientTrainer, "FedAvgClientTrainer")

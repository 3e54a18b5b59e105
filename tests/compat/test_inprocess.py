"""FedLab-1.2.1-style code run in one process on fedlab and on fastfl, with the same seeds: same results."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from tests.compat.usercode import CALLS, build, data, fedprox_client, mlp

pytest.importorskip("fedlab.core.client")
LIBS = ("fedlab", "fastfl")


def _standalone(lib: str, rounds: int = 3) -> dict:
    """FedLab's standalone example: SubsetSerialTrainer uplink + Aggregators.fedavg_aggregate."""
    ns = build(lib)
    random.seed(0)
    torch.manual_seed(0)
    model = mlp()
    train, test = data(), data(60, seed=1)
    data_indices = {i: list(range(i * 12, i * 12 + 12)) for i in range(10)}
    trainer = ns.SubsetSerialTrainer(
        model=model, dataset=train, data_slices=data_indices, args={"epochs": 2, "batch_size": 5, "lr": 0.1}
    )
    handler = ns.SyncParameterServerHandler(model, rounds, 0.3)
    handler.client_num_in_total = 10
    test_loader = DataLoader(test, batch_size=25)
    kept, snapshots, metrics = [], [], []
    for _ in range(rounds):
        model_parameters = ns.SerializationTool.serialize_model(model)
        selection = handler.sample_clients()
        returned = trainer.local_process(payload=[model_parameters], id_list=selection)
        parameters_list = trainer.uplink_package
        assert returned == parameters_list or returned is parameters_list
        kept.append(parameters_list)
        snapshots.append([p.clone() for p in parameters_list])
        ns.SerializationTool.deserialize_model(model, ns.Aggregators.fedavg_aggregate(parameters_list))
        metrics.append(ns.functional.evaluate(model, nn.CrossEntropyLoss(), test_loader))
    intact = all(
        torch.equal(a, b) for ks, ss in zip(kept, snapshots, strict=True) for a, b in zip(ks, ss, strict=True)
    )
    return {
        "params": ns.SerializationTool.serialize_model(model),
        "lengths": [len(k) for k in kept],
        "metrics": metrics,
        "intact": intact,
        "selections": handler.round,
        "rng": (random.random(), torch.rand(1).item()),
    }


def test_standalone_serial_uplink_and_fedavg_aggregate_match_fedlab():
    fedlab, fastfl = _standalone("fedlab"), _standalone("fastfl")
    assert fastfl["lengths"] == fedlab["lengths"] == [3, 3, 3]  # the K vectors, nothing appended
    torch.testing.assert_close(fastfl["params"], fedlab["params"], rtol=1e-5, atol=1e-6)
    for (l1, a1), (l2, a2) in zip(fastfl["metrics"], fedlab["metrics"], strict=True):
        assert l1 == pytest.approx(l2, rel=1e-5) and a1 == pytest.approx(a2)
    assert fastfl["intact"]  # results handed out in one round are not overwritten by the next
    assert fastfl["rng"] == pytest.approx(fedlab["rng"])  # the same draws of random and torch were used


def _fedprox_with_custom_aggregation(lib: str, rounds: int = 2) -> tuple[torch.Tensor, dict]:
    """A FedProx trainer subclass and a handler overriding `_update_global_model`, driven as a manager does."""
    ns = build(lib)
    CALLS.clear()
    random.seed(1)
    torch.manual_seed(1)
    handler = ns.MedianHandler(mlp(), rounds, 1.0)
    handler.client_num_in_total = 3
    trainers = [fedprox_client(ns, shard) for shard in range(3)]
    while handler.if_stop is not True:
        for cid in handler.sample_clients():
            trainers[cid].local_process(payload=handler.downlink_package)
            if handler._update_global_model(trainers[cid].uplink_package):
                break
    return handler.model_parameters, dict(CALLS)


def test_fedprox_trainer_and_custom_aggregation_handler_match_fedlab():
    theirs, their_calls = _fedprox_with_custom_aggregation("fedlab")
    ours, our_calls = _fedprox_with_custom_aggregation("fastfl")
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert our_calls == their_calls == {"train": 6, "update": 6}


def test_average_meter_partition_report_and_logger_match_fedlab(tmp_path, capsys):
    fl = build("fedlab").functional
    ff = build("fastfl").functional
    results = []
    for functional in (fl, ff):
        meter = functional.AverageMeter()
        for correct, batch in [(40, 50), (45, 50), (7, 10)]:
            meter.update(correct, batch)  # FedLab's accuracy pattern
        results.append((meter.sum, meter.count, meter.avg, meter.val))
    assert results[0] == results[1] and results[1][2] == pytest.approx(92 / 110)
    labels = np.random.default_rng(0).integers(0, 4, size=40)
    indices = {c: np.arange(c * 10, c * 10 + 10) for c in range(4)}
    texts = []
    for i, functional in enumerate((fl, ff)):
        path = tmp_path / f"report{i}.csv"
        functional.partition_report(labels, indices, class_num=4, verbose=True, file=str(path))
        texts.append((capsys.readouterr().out, path.read_text()))
    assert texts[0] == texts[1]
    for i, lib in enumerate(LIBS):
        logger = build(lib).Logger(log_name=f"compat{i}", log_file=str(tmp_path / f"log{i}.txt"))
        logger.info("round 1 done")
        logger.warning("slow client")
    lines = [(tmp_path / f"log{i}.txt").read_text().splitlines() for i in range(2)]
    strip = [[line.split(" - ", 1)[1].replace("compat1", "compat0") for line in ls] for ls in lines]
    assert strip[0] == strip[1] == ["compat0 - INFO - round 1 done", "compat0 - WARNING - slow client"]


def test_serial_results_kept_by_user_code_survive_later_rounds():
    ns = build("fastfl")
    trainer = ns.SubsetSerialTrainer(mlp(), data(), [list(range(i * 20, i * 20 + 20)) for i in range(6)])
    flat = ns.SerializationTool.serialize_model(mlp())
    per_client = {}
    for r in range(3):
        for cid, params in zip([r, r + 3], trainer.local_process([r, r + 3], [flat]), strict=True):
            per_client[cid] = params  # FedLab users keep per-client models like this
    first = copy.deepcopy(per_client)
    trainer.local_process([0, 1, 2, 3, 4, 5], [flat + 1])
    assert all(torch.equal(per_client[c], first[c]) for c in per_client)

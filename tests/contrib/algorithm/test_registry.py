"""The registry (contract C6): names, classes, hyperparameters."""

from __future__ import annotations

import pytest

from fastfl.contrib.algorithm import ALGORITHMS, Algorithm, get_algorithm
from fastfl.errors import FastFLError, UnknownAlgorithmError


def test_every_algorithm_has_a_handler_and_serial_trainer_taking_its_hyperparameters() -> None:
    import inspect

    assert {"fedavg", "fedprox", "scaffold", "feddyn"} <= set(ALGORITHMS)
    for name, algo in ALGORITHMS.items():
        assert isinstance(algo, Algorithm) and algo.name == name
        taken = set(inspect.signature(algo.serial_trainer.__init__).parameters)
        taken |= set(inspect.signature(algo.handler.__init__).parameters)
        for cls in (algo.serial_trainer, algo.handler):
            taken |= {
                p
                for c in cls.__mro__
                for p in inspect.signature(c.__init__).parameters
                if "__init__" in vars(c)
            }
        assert set(algo.hparams) <= taken, name
        for cls in (algo.serial_trainer, algo.handler):
            assert callable(cls.state_dict) and callable(cls.load_state_dict)


def test_get_algorithm_is_case_insensitive_and_unknown_names_list_the_known_ones() -> None:
    assert get_algorithm("FedProx") is ALGORITHMS["fedprox"]
    with pytest.raises(UnknownAlgorithmError, match="fedavg") as err:
        get_algorithm("fedsgd")
    assert isinstance(err.value, FastFLError) and isinstance(err.value, ValueError)


def test_kwargs_split_between_trainer_and_handler() -> None:
    dyn = get_algorithm("feddyn")
    assert dyn.trainer_kwargs(alpha=0.5) == {"alpha": 0.5}
    assert dyn.handler_kwargs(alpha=0.5) == {"alpha": 0.5, "weighted": False}
    with pytest.raises(UnknownAlgorithmError, match="mu"):
        dyn.trainer_kwargs(mu=1.0)

from __future__ import annotations

import pytest

from fastfl.cli import main
from fastfl.cli.config import load_config, parse_assignment
from fastfl.errors import ConfigError, FastFLError


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    return err


def test_unknown_key_names_key_and_accepted(tmp_path, small_config, capsys):
    out = tmp_path / "never"
    err = _error(capsys, ["run", str(small_config), "--set", "train.momentum=0.9", "--out", str(out)])
    assert "train.momentum: unknown key" in err and "clients_per_round" in err
    assert not out.exists()


def test_unknown_section_in_file(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[optimizer]\nlr = 0.1\n")
    err = _error(capsys, ["run", str(path), "--out", str(tmp_path / "o")])
    assert "[optimizer]: unknown section" in err and "train" in err
    assert not (tmp_path / "o").exists()


def test_wrong_type_names_key_and_expected_type(tmp_path, small_config, capsys):
    err = _error(
        capsys, ["run", str(small_config), "--set", 'run.rounds="ten"', "--out", str(tmp_path / "o")]
    )
    assert "run.rounds: expected an integer, got 'ten'" in err
    assert not (tmp_path / "o").exists()


def test_missing_config_and_data_file(tmp_path, small_config, capsys):
    err = _error(capsys, ["run", str(tmp_path / "nope.toml")])
    assert "nope.toml: config file not found" in err
    missing = tmp_path / "clients.npz"
    err = _error(
        capsys,
        [
            "run",
            str(small_config),
            "--data",
            "file",
            "--set",
            f"data.path={missing}",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert f"data.path: {missing} does not exist" in err
    assert not (tmp_path / "o").exists()


def test_unknown_algorithm_lists_known_names(tmp_path, small_config, capsys):
    err = _error(capsys, ["run", str(small_config), "--algorithm", "fedmagic", "--out", str(tmp_path / "o")])
    assert "algorithm.name" in err and "fedmagic" in err and "fedavg" in err
    assert not (tmp_path / "o").exists()


def test_unknown_hyperparameter_and_names(tmp_path, small_config, capsys):
    err = _error(
        capsys, ["run", str(small_config), "--set", "algorithm.warp=3", "--out", str(tmp_path / "o")]
    )
    assert "algorithm.warp: not a hyperparameter of 'fedavg'" in err
    err = _error(capsys, ["run", str(small_config), "--model", "transformer", "--out", str(tmp_path / "o")])
    assert "model.name: unknown model 'transformer'; accepted: mlp, cnn, logistic, linear" in err
    err = _error(capsys, ["run", str(small_config), "--partition", "zipf", "--out", str(tmp_path / "o")])
    assert "partition.scheme: unknown scheme 'zipf'" in err
    err = _error(
        capsys, ["run", str(small_config), "--data", "nosuch.module:fn", "--out", str(tmp_path / "o")]
    )
    assert "data.name: cannot import module 'nosuch.module'" in err
    assert not (tmp_path / "o").exists()


def test_set_values_are_toml_and_bare_keys_resolve():
    assert parse_assignment("train.lr=0.05") == ("train.lr", 0.05)
    assert parse_assignment("model.hidden=[32, 8]") == ("model.hidden", [32, 8])
    assert parse_assignment("data.name=digits") == ("data.name", "digits")
    cfg = load_config(None, [("rounds", 7), ("lr", 1)])
    assert cfg["run"]["rounds"] == 7 and cfg["train"]["lr"] == 1.0
    assert ("run", "rounds") in cfg.explicit
    with pytest.raises(ConfigError, match=r"ambiguous.*data\.name.*model\.name"):
        load_config(None, [("name", "x")])
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_assignment("rounds")


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, FastFLError) and issubclass(ConfigError, ValueError)
    with pytest.raises(ValueError, match=r"run\.eval_every: must be >= 1"):
        load_config(None, [("run.eval_every", 0)])


@pytest.mark.parametrize("name", ["digits_fedavg", "fedprox_synthetic"])
def test_bundled_configs_are_valid(name):
    from pathlib import Path

    from fastfl.cli.experiment import prepare

    path = Path(__file__).resolve().parents[2] / "configs" / f"{name}.toml"
    exp = prepare(load_config(path))
    assert exp.clients in (100, 30) and exp.config["run"]["rounds"] > 0


def test_check_prints_the_resolved_config_and_writes_nothing(tmp_path, small_config, capsys):
    import tomllib

    out = tmp_path / "o"
    assert main(["run", str(small_config), "--check", "--lr", "0.3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    resolved = tomllib.loads(text)
    assert resolved["train"]["lr"] == 0.3 and resolved["partition"]["clients"] == 20
    assert "# fedavg: 20 clients, 1438 training samples" in text
    assert not out.exists()

from __future__ import annotations

import logging
import subprocess
import sys
import uuid

import pytest

from fastfl.utils import Logger, MessageCode
from fastfl.utils.logger import FORMAT


def test_message_codes_are_fedlabs():
    expected = {
        "ParameterRequest": 0,
        "GradientUpdate": 1,
        "ParameterUpdate": 2,
        "EvaluateParams": 3,
        "Exit": 4,
        "SetUp": 5,
        "Activation": 6,
    }
    assert {m.name: m.value for m in MessageCode} == expected
    assert MessageCode(4) is MessageCode.Exit
    with pytest.raises(ValueError, match="7 is not a valid MessageCode"):
        MessageCode(7)
    fedlab_utils = pytest.importorskip("fedlab.utils")
    assert {m.name: m.value for m in fedlab_utils.MessageCode} == expected


def fresh_name() -> str:
    return f"fastfl-test-{uuid.uuid4().hex[:8]}"


def test_logger_writes_info_and_up_to_its_file(tmp_path):
    path = tmp_path / "run.log"
    log = Logger(fresh_name(), str(path))
    log.debug("hidden %d", 1)
    log.info("round %d done", 3)
    log.warning("slow client")
    log.error("lost client %s", "c7")
    log.close()
    lines = path.read_text().splitlines()
    assert [line.split(" - ", 1)[1] for line in lines] == [
        f"{log.name} - INFO - round 3 done",
        f"{log.name} - WARNING - slow client",
        f"{log.name} - ERROR - lost client c7",
    ]
    assert log.logger.level == logging.INFO
    log.info("after close")
    assert len(path.read_text().splitlines()) == 3


def test_logger_prints_to_stdout_when_nothing_is_configured(capsys, monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a program that configured no logging
    name = fresh_name()
    log = Logger(name)
    log.info("hello")
    out = capsys.readouterr().out
    assert out.endswith(f" - {name} - INFO - hello\n")
    Logger(name).info("again")  # a second Logger on the same name adds no second handler
    assert capsys.readouterr().out.count("again") == 1
    assert len(logging.getLogger(name).handlers) == 1


def test_logger_defers_to_configured_logging(caplog, capsys):
    name = fresh_name()
    with caplog.at_level(logging.INFO):
        Logger(name).info("to the app's handler")
    assert not logging.getLogger(name).handlers  # caplog's root handler receives it
    assert [r.getMessage() for r in caplog.records if r.name == name] == ["to the app's handler"]
    assert "to the app's handler" not in capsys.readouterr().out


def test_default_logger_name_and_format():
    assert Logger().name == "fastfl"
    assert FORMAT == "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def test_import_configures_nothing_and_loads_submodules_lazily():
    code = (
        "import logging, sys\n"
        "import fastfl.utils as u\n"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers\n"
        "assert logging.getLogger().level == logging.WARNING\n"
        "assert 'fastfl.utils.functional' not in sys.modules\n"
        "assert 'fastfl.utils.dataset' not in sys.modules\n"
        "assert u.functional.AverageMeter\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "ok", done.stderr
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        import fastfl.utils

        _ = fastfl.utils.nothing

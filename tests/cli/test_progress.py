from __future__ import annotations

import io

import pytest

from fastfl.utils.progress import RoundReporter


def test_lines_without_a_terminal_and_files(tmp_path):
    stream = io.StringIO()
    reporter = RoundReporter(2, out=tmp_path / "m", stream=stream)
    assert reporter.bar is False
    reporter.record(1, 10, 0.5, 0.8, 0.1, bytes_sent=7)
    reporter.record(2, 10, 0.4, 0.9, 0.1, bytes_sent=7)
    files = reporter.close()
    assert stream.getvalue().splitlines() == [
        "round 1/2  clients  10  loss 0.5000  acc  80.00%  time 0.10s",
        "round 2/2  clients  10  loss 0.4000  acc  90.00%  time 0.10s",
    ]
    assert files["csv"].read_text().splitlines()[0] == "round,clients,loss,accuracy,seconds,bytes_sent"


def test_tqdm_bar_under_the_lines():
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    reporter = RoundReporter(3, stream=stream, bar=True)
    for r in (1, 2, 3):
        reporter.record(r, 4, 1.0, 0.5, 0.01)
    reporter.close()
    text = stream.getvalue()
    assert text.count("round ") == 3 and "3/3" in text and "100%" in text

from __future__ import annotations

import numpy as np
import pytest

from fastfl.utils.dataset import PartitionError, client_class_counts, partition_stats, plot_partition


def test_class_counts_and_entropy():
    y = np.array([0, 0, 1, 2, 2, 2])
    d = {1: np.array([2, 3]), 0: np.array([0, 1, 4, 5])}
    counts = client_class_counts(y, d)
    assert counts.tolist() == [[2, 0, 2], [0, 1, 1]]
    stats = partition_stats(d, y)
    assert stats.clients.tolist() == [0, 1] and stats.num_samples.tolist() == [4, 2]
    assert np.allclose(stats.class_entropy(), [np.log(2), np.log(2)])
    assert stats.to_csv().splitlines() == [
        "client,num_samples,class0,class1,class2",
        "0,4,2,0,2",
        "1,2,0,1,1",
    ]
    with pytest.raises(PartitionError, match="outside"):
        client_class_counts(y, {0: [9]})


def test_stats_without_labels():
    stats = partition_stats({0: [1, 2], 1: [0]})
    assert str(stats).splitlines()[0].split() == ["client", "num_samples"]
    with pytest.raises(PartitionError, match="no labels"):
        stats.class_entropy()


def test_to_pandas():
    pytest.importorskip("pandas")
    frame = partition_stats({0: [0], 1: [1, 2]}, np.array([1, 0, 1])).to_pandas()
    assert frame.loc[1, "class1"] == 1 and frame["num_samples"].tolist() == [1, 2]


def test_plot_partition_png(tmp_path):
    pytest.importorskip("matplotlib")
    y = np.arange(300) % 3
    d = {c: np.arange(c, 300, 5) for c in range(5)}
    path = plot_partition(y, d, tmp_path / "p.png", normalize=True, title="demo")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    many = plot_partition(np.arange(300) % 30, d, tmp_path / "q.png", max_clients=2)
    assert (tmp_path / "q.png").stat().st_size > 1000 and many.endswith("q.png")
    with pytest.raises(PartitionError, match="empty"):
        plot_partition(y, {}, tmp_path / "r.png")

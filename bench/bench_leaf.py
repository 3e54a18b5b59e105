"""LEAF loading benchmarks: open one client of a FEMNIST-shaped split and iterate it once.

Data: `synthetic_tree(..., "femnist")`, LEAF's JSON layout with FEMNIST's shapes (784 floats per
image, most of them 1.0 as in LEAF's files), users dealt over 10 files as LEAF deals them over
its `all_data_<k>.json`. Sizes: "large" = 1,000 users x 200 train samples (marked slow; the tree,
about 1.3 GB of JSON, is kept in $FASTFL_BENCH_DIR or /tmp between runs), "small" = 50 users x
40 samples (the smoke run).

Ways to get the middle client's Dataset (500 of 1,000) (group leaf-open-client), and the same followed by one pass of
a DataLoader over it, batch 64 (group leaf-open-and-iterate-client; the JSON ways are left out
there: iterating adds the same few ms to every way). All with a warm page cache:
- fastfl-cache: `open_leaf(...).client(500)` (header, index CRCs, client CRC, one copy);
- json-one-file: `json.load` of the one file holding the user, tensors built as FedLab's
  FemnistDataset does (the best case of reading JSON: it knows which file to parse);
- fedlab-pickle: FedLab's way, `pickle.load` of the client's pickled Dataset object;
- torch-pt: the plain-torch idiom, `torch.load(weights_only=True)` of a per-client .pt file;
- fastfl-json-all: `open_leaf(use_cache=False)`, parsing the whole split (= the cache build);
- bytes-floor: reading the client's bytes from the cache file with one `os.pread` (no checks).
Every result is compared with the client's data after timing.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from fastfl.utils.dataset.leaf import LeafClientDataset, open_leaf, synthetic_tree
from fastfl.utils.dataset.leaf import cache as leaf_cache
from fastfl.utils.dataset.leaf.source import json_files

SIZES = {"small": (50, 40), "large": (1000, 200)}
SIZE_PARAMS = [pytest.param("small"), pytest.param("large", marks=pytest.mark.slow)]
FILES = 10
BATCH = 64


class FemnistDataset(torch.utils.data.Dataset):
    """FedLab-benchmarks' per-client FEMNIST Dataset: tensors built from the JSON lists."""

    def __init__(self, client_id: int, client_str: str, data: list, targets: list) -> None:
        self.client_id, self.client_str = client_id, client_str
        self.data = torch.tensor(data, dtype=torch.float32).reshape(-1, 1, 28, 28)
        self.targets = torch.tensor(targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.data[index], self.targets[index]


def _tree(size: str, tmp_root: Path) -> Path:
    users, samples = SIZES[size]
    if size == "small":
        root = tmp_root
    else:
        base = Path(os.environ.get("FASTFL_BENCH_DIR", tempfile.gettempdir()))
        root = base / f"fastfl-bench-leaf-{users}x{samples}"
    marker = root / "complete"
    if not marker.exists():
        synthetic_tree(
            root, "femnist", num_users=users, train_samples=samples, test_samples=2, num_files=FILES
        )
        marker.write_text("written by bench/bench_leaf.py\n")
    return root


@pytest.fixture(scope="module", params=SIZE_PARAMS)
def leaf(request, tmp_path_factory):
    size = request.param
    root = _tree(size, tmp_path_factory.mktemp("leaf"))
    split = open_leaf("femnist", root, "train")  # builds the cache once
    cid = len(split) // 2
    extra = tmp_path_factory.mktemp("per_client")
    client = split.client(cid)
    with (extra / f"train_{cid}.pkl").open("wb") as f:
        pickle.dump(FemnistDataset(cid, client.client_str, client.data.tolist(), client.targets.tolist()), f)
    torch.save({"data": client.data, "targets": client.targets}, extra / f"train_{cid}.pt")
    table = leaf_cache.table(split.path)
    return {
        "size": size,
        "root": root,
        "cid": cid,
        "client": client,
        "extra": extra,
        "split": split,
        "table": table,
    }


def _iterate(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*DataLoader(dataset, batch_size=BATCH), strict=True)
    return torch.cat(xs), torch.cat(ys)


def _fastfl_cache(ctx):
    return open_leaf("femnist", ctx["root"], "train").client(ctx["cid"])


def _json_one_file(ctx):
    user = ctx["client"].client_str
    path = json_files(ctx["root"], "femnist", "train")[int(user[2:]) % FILES]
    with path.open("rb") as f:
        doc = json.load(f)
    record = doc["user_data"][user]
    return FemnistDataset(ctx["cid"], user, record["x"], record["y"])


def _fedlab_pickle(ctx):
    with (ctx["extra"] / f"train_{ctx['cid']}.pkl").open("rb") as f:
        return pickle.load(f)


def _torch_pt(ctx):
    saved = torch.load(ctx["extra"] / f"train_{ctx['cid']}.pt", weights_only=True)
    return LeafClientDataset(ctx["cid"], "", saved["data"], saved["targets"])


def _json_all(ctx):
    return open_leaf("femnist", ctx["root"], "train", use_cache=False).client(ctx["cid"])


def _bytes_floor(ctx):
    split, cid = ctx["split"], ctx["cid"]
    begin, end = (int(v) for v in split.arrays["sample_offsets"][cid : cid + 2])
    offsets = ctx["table"]
    fd = os.open(split.path, os.O_RDONLY)
    try:
        raw_x = os.pread(fd, (end - begin) * 784 * 4, offsets["x"][0] + begin * 784 * 4)
        raw_y = os.pread(fd, (end - begin) * 8, offsets["y"][0] + begin * 8)
    finally:
        os.close(fd)
    x = torch.frombuffer(bytearray(raw_x), dtype=torch.float32).view(-1, 1, 28, 28)
    y = torch.frombuffer(bytearray(raw_y), dtype=torch.int64)
    return LeafClientDataset(cid, "", x, y)


WAYS = {
    "fastfl-cache": _fastfl_cache,
    "json-one-file": _json_one_file,
    "fedlab-pickle": _fedlab_pickle,
    "torch-pt": _torch_pt,
    "fastfl-json-all": _json_all,
    "bytes-floor": _bytes_floor,
}


def _rounds(way: str, size: str) -> int:
    if way in ("fastfl-json-all", "json-one-file"):
        return (1 if way == "fastfl-json-all" else 3) if size == "large" else 5
    return 50


def _run(benchmark, leaf, fn, way):
    rounds = _rounds(way, leaf["size"])
    out = benchmark.pedantic(fn, args=(leaf,), rounds=rounds, iterations=1, warmup_rounds=min(rounds - 1, 1))
    benchmark.extra_info["bytes"] = leaf["client"].data.nbytes + leaf["client"].targets.nbytes
    benchmark.extra_info["size"] = leaf["size"]
    return out


@pytest.mark.benchmark(group="leaf-open-client")
@pytest.mark.parametrize("way", list(WAYS))
def bench_open_client(benchmark, leaf, way):
    dataset = _run(benchmark, leaf, WAYS[way], way)
    assert torch.equal(dataset.data, leaf["client"].data) and torch.equal(
        dataset.targets, leaf["client"].targets
    )


@pytest.mark.benchmark(group="leaf-open-and-iterate-client")
@pytest.mark.parametrize("way", [w for w in WAYS if "json" not in w])
def bench_open_and_iterate_client(benchmark, leaf, way):
    x, y = _run(benchmark, leaf, lambda ctx: _iterate(WAYS[way](ctx)), way)
    assert torch.equal(x, leaf["client"].data) and torch.equal(y, leaf["client"].targets)

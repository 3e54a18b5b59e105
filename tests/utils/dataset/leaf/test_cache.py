from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from fastfl.utils.dataset.leaf import LeafCacheError, cache_path, open_leaf, synthetic_tree
from fastfl.utils.dataset.leaf import cache as cache_mod
from fastfl.utils.dataset.leaf.source import fingerprint, json_files


@pytest.fixture
def tree(tmp_path):
    synthetic_tree(tmp_path, "femnist", num_users=4, num_files=2, seed=7)
    return tmp_path


def _no_json(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("JSON was parsed although the cache is valid")

    monkeypatch.setattr(json, "load", refuse)
    monkeypatch.setattr(json, "loads", refuse)


def _snapshot(split):
    return [(split.client(c).data.clone(), split.client(c).targets.clone()) for c in range(len(split))]


def _same(a, b):
    return len(a) == len(b) and all(
        torch.equal(x, y) and torch.equal(u, v) for (x, u), (y, v) in zip(a, b, strict=False)
    )


def test_cache_built_once_then_reused_without_json(tree, monkeypatch):
    first = open_leaf("femnist", tree, "train")
    path = cache_path(tree, "femnist", "train")
    assert first.source == "cache" and path.is_file()
    want = _snapshot(first)
    mtime = path.stat().st_mtime_ns
    _no_json(monkeypatch)
    again = open_leaf("femnist", tree, "train")
    assert _same(_snapshot(again), want)
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    assert not again.arrays["x"].flags.writeable  # a read-only mapping of the file


def test_text_test_split_reuses_train_vocab_cache_without_json(tmp_path, monkeypatch):
    synthetic_tree(tmp_path, "sent140", num_users=3, seed=8)
    test = open_leaf("sent140", tmp_path, "test")
    want = _snapshot(test)
    _no_json(monkeypatch)
    assert _same(_snapshot(open_leaf("sent140", tmp_path, "test")), want)


def test_cache_rebuilt_when_json_changes(tree):
    open_leaf("femnist", tree, "train")
    path = json_files(tree, "femnist", "train")[0]
    doc = json.loads(path.read_text())
    user = doc["users"][0]
    doc["user_data"][user]["y"][0] = (doc["user_data"][user]["y"][0] + 1) % 62
    path.write_text(json.dumps(doc))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime, whatever the clock's grain
    split = open_leaf("femnist", tree, "train")
    assert split.client(split.client_id(user)).targets[0].item() == doc["user_data"][user]["y"][0]


def test_cache_rebuilt_when_a_file_is_added(tree):
    open_leaf("femnist", tree, "train")
    extra = json_files(tree, "femnist", "train")[0].with_name("zz.json")
    extra.write_text(
        json.dumps({"users": ["zz"], "num_samples": [1], "user_data": {"zz": {"x": [[1.0] * 784], "y": [3]}}})
    )
    split = open_leaf("femnist", tree, "train")
    assert split.users[-1] == "zz" and split.client(len(split) - 1).targets.tolist() == [3]


@pytest.mark.parametrize(
    "damage",
    ["truncate", "extend", "magic", "header", "table", "index", "empty", "pickle"],
)
def test_damaged_cache_is_detected_and_rebuilt(tree, damage, tmp_path_factory):
    want = _snapshot(open_leaf("femnist", tree, "train"))
    path = cache_path(tree, "femnist", "train")
    raw = bytearray(path.read_bytes())
    marker = tmp_path_factory.mktemp("marker") / "executed"
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "extend":
        raw += b"\0" * 64
    elif damage == "magic":
        raw[0] ^= 0xFF
    elif damage == "header":
        raw[9] ^= 0x01  # version byte: caught by the header CRC
    elif damage == "table":
        raw[64 + 20] ^= 0x01
    elif damage == "index":
        raw[_array_offset(path, "sample_offsets") + 8] ^= 0x01
    elif damage == "empty":
        raw = bytearray()
    else:  # a pickle that would run code if anything unpickled it
        raw = bytearray(pickle.dumps(_Boom(str(marker))))
    path.write_bytes(bytes(raw))
    with pytest.raises(LeafCacheError):
        cache_mod.read(path, fingerprint(json_files(tree, "femnist", "train"), _extra()))
    assert _same(_snapshot(open_leaf("femnist", tree, "train")), want)
    assert not marker.exists()


def _extra():
    return {"name": "femnist", "split": "train", "format": cache_mod.VERSION}


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_corrupt_client_payload_is_caught_on_read_and_rebuilt(tree, caplog):
    split = open_leaf("femnist", tree, "train")
    want = _snapshot(split)
    path = cache_path(tree, "femnist", "train")
    begin = int(split.arrays["sample_offsets"][2])
    x_offset = split.arrays["x"][begin:].ctypes.data - split.arrays["x"].ctypes.data
    x_file_offset = _array_offset(path, "x") + x_offset
    del split
    raw = bytearray(path.read_bytes())
    raw[x_file_offset + 1] ^= 0x40  # one pixel of client 2
    path.write_bytes(bytes(raw))
    damaged = open_leaf("femnist", tree, "train")  # header and index are fine: opens
    assert torch.equal(damaged.client(0).data, want[0][0])
    assert "rebuilding" not in caplog.text
    assert torch.equal(damaged.client(2).data, want[2][0])  # CRC mismatch -> rebuilt -> right data
    assert "client 2 is corrupt" in caplog.text and "rebuilding" in caplog.text
    assert cache_mod.read(
        path, fingerprint(json_files(tree, "femnist", "train"), _extra())
    )  # file is whole again


def test_corrupt_client_payload_raises_without_rebuild_function(tree):
    split = open_leaf("femnist", tree, "train")
    arrays = dict(split.arrays)
    arrays["y"] = np.array(arrays["y"])
    arrays["y"][0] += 1
    broken = type(split)("femnist", "train", arrays, split.options, path=split.path)
    with pytest.raises(LeafCacheError, match="client 0 is corrupt"):
        broken.client(0)


def _array_offset(path, name):
    return cache_mod.table(path)[name][0]


def test_hostile_table_sizes_give_an_error_not_an_allocation(tree):
    open_leaf("femnist", tree, "train")
    path = cache_path(tree, "femnist", "train")
    raw = bytearray(path.read_bytes())
    n = struct.unpack_from("<I", raw, 12)[0]
    table = np.frombuffer(bytes(raw[64 : 64 + 72 * n]), dtype=cache_mod._ENTRY).copy()
    table[0]["shape"][0] = 2**60
    table[0]["nbytes"] = 2**62
    raw[64 : 64 + 72 * n] = table.tobytes()
    import zlib

    struct.pack_into("<I", raw, 56, zlib.crc32(table.tobytes()))
    struct.pack_into("<I", raw, 60, zlib.crc32(bytes(raw[:60])))
    path.write_bytes(bytes(raw))
    fp = fingerprint(json_files(tree, "femnist", "train"), _extra())
    with pytest.raises(LeafCacheError, match="inconsistent size or offset"):
        cache_mod.read(path, fp)


def test_reader_modules_never_unpickle():
    package = Path(cache_mod.__file__).parent
    for module in package.glob("*.py"):
        text = module.read_text()
        assert "import pickle" not in text and "torch.load" not in text and "allow_pickle=True" not in text


def test_rebuild_flag_and_cache_dir(tree, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cache")
    split = open_leaf("femnist", tree, "train", cache_dir=elsewhere)
    assert split.path == elsewhere / "train.fastfl-leaf" and split.path.is_file()
    assert not cache_path(tree, "femnist", "train").exists()
    before = split.path.stat().st_mtime_ns
    os.utime(split.path, ns=(before - 10**9, before - 10**9))
    open_leaf("femnist", tree, "train", cache_dir=elsewhere, rebuild=True)
    assert split.path.stat().st_mtime_ns != before - 10**9


def test_celeba_cache_follows_image_size(tmp_path):
    pytest.importorskip("PIL")
    synthetic_tree(tmp_path, "celeba", num_users=2, seed=9)
    assert open_leaf("celeba", tmp_path, "train", image_size=8).client(0).data.shape[-1] == 8
    assert open_leaf("celeba", tmp_path, "train", image_size=12).client(0).data.shape[-1] == 12


def test_cache_and_json_paths_agree_for_every_kind(tmp_path):
    pytest.importorskip("PIL")
    for name in ("femnist", "shakespeare", "sent140", "celeba", "reddit", "synthetic"):
        synthetic_tree(tmp_path, name, num_users=3, num_files=2, seed=10)
        for split in ("train", "test"):
            cached = open_leaf(name, tmp_path, split, image_size=8)
            parsed = open_leaf(name, tmp_path, split, image_size=8, use_cache=False)
            assert cached.users == parsed.users and cached.num_samples == parsed.num_samples
            assert cached.vocab == parsed.vocab
            assert _same(_snapshot(cached), _snapshot(parsed))


def test_unwritable_cache_dir_falls_back_to_memory(tree, caplog):
    blocker = tree / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    split = open_leaf("femnist", tree, "train", cache_dir=blocker / "cache")
    assert split.source == "json" and "cannot write the LEAF cache" in caplog.text
    assert _same(_snapshot(split), _snapshot(open_leaf("femnist", tree, "train")))

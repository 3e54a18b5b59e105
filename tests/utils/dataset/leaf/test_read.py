from __future__ import annotations

import numpy as np
import pytest
import torch

from fastfl.utils.dataset.leaf import (
    ALL_LETTERS,
    IGNORE_INDEX,
    get_LEAF_dataloader,
    open_leaf,
    synthetic_tree,
    tokenize,
)

from ._trees import oracle, tweet, write_split


@pytest.fixture(params=[True, False], ids=["cache", "json"])
def use_cache(request):
    return request.param


def _both_splits(root, name, use_cache, **kw):
    return [open_leaf(name, root, split, use_cache=use_cache, **kw) for split in ("train", "test")]


def test_femnist_reads_back_exactly(tmp_path, use_cache):
    synthetic_tree(tmp_path, "femnist", num_users=5, num_files=2, seed=1)
    for split in _both_splits(tmp_path, "femnist", use_cache):
        expected = oracle(tmp_path, "femnist", split.split)
        assert split.users == list(expected)
        assert split.num_samples == [len(d["y"]) for d in expected.values()]
        assert split.source == ("cache" if use_cache else "json")
        for cid, record in enumerate(expected.values()):
            client = split.client(cid)
            want = torch.tensor(record["x"], dtype=torch.float32).view(-1, 1, 28, 28)
            assert client.data.dtype == torch.float32
            assert torch.equal(client.data, want)
            assert torch.equal(client.targets, torch.tensor(record["y"], dtype=torch.int64))
            assert client.client_str == split.users[cid] and client.client_id == cid
            assert len(client) == len(record["y"])
            x0, y0 = client[0]
            assert torch.equal(x0, want[0]) and int(y0) == record["y"][0]


def test_synthetic_reads_back_exactly(tmp_path, use_cache):
    synthetic_tree(tmp_path, "synthetic", num_users=4, seed=2)
    for split in _both_splits(tmp_path, "synthetic", use_cache):
        for cid, record in enumerate(oracle(tmp_path, "synthetic", split.split).values()):
            client = split.client(cid)
            assert torch.equal(client.data, torch.tensor(record["x"], dtype=torch.float32))
            assert torch.equal(client.targets, torch.tensor(record["y"]))


def test_shakespeare_uses_leafs_80_letters(tmp_path, use_cache):
    assert len(ALL_LETTERS) == 80 == len(set(ALL_LETTERS))
    assert (ALL_LETTERS[0], ALL_LETTERS.index("A"), ALL_LETTERS.index("a"), ALL_LETTERS[-1]) == (
        "\n",
        25,
        53,
        "}",
    )
    synthetic_tree(tmp_path, "shakespeare", num_users=3, seed=3)
    for split in _both_splits(tmp_path, "shakespeare", use_cache):
        for cid, record in enumerate(oracle(tmp_path, "shakespeare", split.split).values()):
            client = split.client(cid)
            assert client.data.shape == (len(record["x"]), 80) and client.data.dtype == torch.int64
            assert client.data.tolist() == [[ALL_LETTERS.index(c) for c in s] for s in record["x"]]
            assert client.targets.tolist() == [ALL_LETTERS.index(c) for c in record["y"]]


def test_shakespeare_hand_written_indices(tmp_path):
    seq = "ab}\n" * 20
    write_split(tmp_path, "shakespeare", "train", {"u": {"x": [seq], "y": ["A"]}})
    client = open_leaf("shakespeare", tmp_path, "train").client(0)
    assert client.data[0, :4].tolist() == [53, 54, 79, 0]
    assert client.targets.tolist() == [25]


def _sent140_tree(root):
    write_split(
        root,
        "sent140",
        "train",
        {"zed": {"x": [tweet("I love it!")], "y": [1]}, "amy": {"x": [tweet("love love rain")], "y": [0]}},
    )
    write_split(root, "sent140", "test", {"amy": {"x": [tweet("love snow, rain")], "y": [1]}})


def test_sent140_vocabulary_from_train_split(tmp_path, use_cache):
    _sent140_tree(tmp_path)
    assert tokenize("I love it!") == ["I", "love", "it", "!"]
    assert tokenize("don't stop... now") == ["don't", "stop", ".", ".", ".", "now"]
    train, test = _both_splits(tmp_path, "sent140", use_cache, max_len=5)
    # counts: love 3, then !, I, it, rain once each (ties by text); "snow" only in test -> <UNK>
    assert train.vocab == ["<PAD>", "<UNK>", "love", "!", "I", "it", "rain"]
    assert test.vocab == train.vocab
    assert train.users == ["amy", "zed"]
    assert train.client(0).data.tolist() == [[2, 2, 6, 0, 0]]
    assert train.client(1).data.tolist() == [[4, 2, 5, 3, 0]]
    assert train.client(1).targets.tolist() == [1]
    assert test.client(0).data.tolist() == [[2, 1, 1, 6, 0]]  # "," is a token, unseen in train


def test_sent140_max_len_and_max_vocab(tmp_path):
    _sent140_tree(tmp_path)
    client = open_leaf("sent140", tmp_path, "train", max_len=2, max_vocab=3).client(1)
    assert client.data.tolist() == [[1, 2]]  # "I" (id 4) is beyond the 3-token vocabulary


def _reddit_tree(root):
    x = [[["<BOS>", "hi", "there", "<PAD>"], ["<BOS>", "hi", "<PAD>", "<PAD>"]]]
    y = [
        {
            "target_tokens": [["hi", "there", "<EOS>", "<PAD>"], ["hi", "<EOS>", "<PAD>", "<PAD>"]],
            "count_tokens": [[1, 1, 1, 0], [1, 1, 0, 0]],
        }
    ]
    write_split(root, "reddit", "train", {"r1": {"x": x, "y": y}})
    x2 = [[["<BOS>", "yo", "<PAD>", "<PAD>"]]]
    y2 = [{"target_tokens": [["yo", "<EOS>", "<PAD>", "<PAD>"]], "count_tokens": [[1, 1, 0, 0]]}]
    write_split(root, "reddit", "test", {"r1": {"x": x2, "y": y2}})


def test_reddit_sequences_vocab_and_ignored_padding(tmp_path, use_cache):
    _reddit_tree(tmp_path)
    train, test = _both_splits(tmp_path, "reddit", use_cache)
    # counts over x and targets: hi 4, <BOS> 2, <EOS> 2, there 2
    assert train.vocab == ["<PAD>", "<UNK>", "hi", "<BOS>", "<EOS>", "there"]
    assert train.num_samples == [2]  # one comment, two sequences: a sample is a sequence
    client = train.client(0)
    assert client.data.tolist() == [[3, 2, 5, 0], [3, 2, 0, 0]]
    assert client.targets.tolist() == [[2, 5, 4, IGNORE_INDEX], [2, 4, IGNORE_INDEX, IGNORE_INDEX]]
    assert test.client(0).data.tolist() == [[3, 1, 0, 0]]
    loss = torch.nn.functional.cross_entropy(torch.zeros(2, 6, 4), client.targets)
    assert torch.isfinite(loss)


def test_celeba_reads_images_from_the_folder(tmp_path, use_cache):
    Image = pytest.importorskip("PIL.Image")
    synthetic_tree(tmp_path, "celeba", num_users=3, seed=4)
    folder = tmp_path / "celeba" / "data" / "raw" / "img_align_celeba"
    for split in _both_splits(tmp_path, "celeba", use_cache, image_size=16):
        for cid, record in enumerate(oracle(tmp_path, "celeba", split.split).values()):
            client = split.client(cid)
            for i, file in enumerate(record["x"]):
                with Image.open(folder / file) as img:
                    want = np.asarray(img.convert("RGB").resize((16, 16), Image.Resampling.BICUBIC))
                want_t = torch.from_numpy(want.copy()).permute(2, 0, 1).float() / 255
                assert torch.equal(client.data[i], want_t)
            assert client.targets.tolist() == record["y"]


def test_get_leaf_dataloader_like_fedlab(tmp_path, monkeypatch):
    synthetic_tree(tmp_path, "femnist", num_users=3, train_samples=5, test_samples=(1, 3), seed=5)
    monkeypatch.setenv("FASTFL_LEAF_ROOT", str(tmp_path))
    train, test = get_LEAF_dataloader("femnist", client_id=2, batch_size=2)
    assert [len(y) for _, y in train] == [2, 2, 1]
    want = open_leaf("femnist", tmp_path, "test").client(2)
    (x, y), *rest = list(test)
    assert not rest and torch.equal(x, want.data) and torch.equal(y, want.targets)
    assert train.dataset.client_str == test.dataset.client_str == "f_00002"


def test_users_sorted_across_files_like_leaf(tmp_path):
    write_split(tmp_path, "synthetic", "train", {"b": {"x": [[1.0]], "y": [0]}}, file="0.json")
    write_split(
        tmp_path,
        "synthetic",
        "train",
        {"c": {"x": [[2.0]], "y": [1]}, "a": {"x": [[3.0]], "y": [2]}},
        file="1.json",
    )
    split = open_leaf("synthetic", tmp_path, "train")
    assert split.users == ["a", "b", "c"]
    assert split.client_id("c") == 2
    assert split.client(0).data.tolist() == [[3.0]]


def test_empty_user_is_a_client_with_no_samples(tmp_path):
    write_split(tmp_path, "femnist", "train", {"e": {"x": [], "y": []}, "f": {"x": [[0.5] * 784], "y": [7]}})
    split = open_leaf("femnist", tmp_path, "train")
    assert split.num_samples == [0, 1]
    assert len(split.client(0)) == 0 and split.client(1).targets.tolist() == [7]

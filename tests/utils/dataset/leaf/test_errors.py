from __future__ import annotations

import json

import pytest

from fastfl.utils.dataset.leaf import (
    LeafDataMissingError,
    LeafFormatError,
    get_LEAF_dataloader,
    open_leaf,
    synthetic_tree,
)

from ._trees import tweet, write_split


def _doc(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_missing_folder_says_where_leaf_files_go(tmp_path):
    with pytest.raises(LeafDataMissingError) as err:
        open_leaf("femnist", tmp_path, "train")
    msg = str(err.value)
    assert str(tmp_path / "femnist" / "data" / "train") in msg
    assert "preprocess.sh" in msg and "data/test" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_folder_without_json_is_missing_data(tmp_path):
    (tmp_path / "shakespeare" / "data" / "train").mkdir(parents=True)
    (tmp_path / "shakespeare" / "data" / "train" / "notes.txt").write_text("hi")
    with pytest.raises(LeafDataMissingError, match="shakespeare train"):
        open_leaf("shakespeare", tmp_path, "train")


def test_missing_test_split_is_reported(tmp_path):
    write_split(tmp_path, "synthetic", "train", {"u": {"x": [[1.0]], "y": [0]}})
    with pytest.raises(LeafDataMissingError, match="synthetic test"):
        get_LEAF_dataloader("synthetic", 0, data_root=tmp_path)


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "femnist" / "data" / "train" / "broken.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [[0.1, ')
    with pytest.raises(LeafFormatError, match=r"broken\.json: not valid JSON"):
        open_leaf("femnist", tmp_path, "train")


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ([1, 2], "expected a JSON object"),
        ({"users": ["a"], "num_samples": [1]}, "'user_data' is missing"),
        ({"users": ["a"], "num_samples": [1, 2], "user_data": {}}, "1 users but 2 num_samples"),
        (
            {"users": ["a", "b"], "num_samples": [1, 1], "user_data": {"a": {"x": [[1.0]], "y": [0]}}},
            "user 'b' is listed in 'users' but has no x/y",
        ),
        (
            {"users": ["a"], "num_samples": [2], "user_data": {"a": {"x": [[1.0]], "y": [0]}}},
            "user 'a': num_samples says 2 but x has 1 and y has 1",
        ),
        (
            {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [[1.0]], "y": [0, 1]}}},
            "user 'a': num_samples says 1 but x has 1 and y has 2",
        ),
        (
            {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [[1.0]], "y": [0]}, "ghost": {}}},
            r"not listed in 'users': \['ghost'\]",
        ),
        (
            {"users": ["a", "a"], "num_samples": [1, 1], "user_data": {"a": {"x": [[1.0]], "y": [0]}}},
            "lists a user twice",
        ),
        (
            {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [[1.0, 2.0], [1.0]], "y": [0]}}},
            "num_samples says 1",
        ),
        (
            {"users": ["a"], "num_samples": [2], "user_data": {"a": {"x": [[1.0, 2.0], [1.0]], "y": [0, 1]}}},
            "user 'a': x rows have different lengths",
        ),
        (
            {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [["0.5"]], "y": [0]}}},
            "user 'a': x must be a list of equal-length lists of numbers",
        ),
        (
            {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [[0.5]], "y": [1.5]}}},
            "user 'a': y must be a list of integer labels",
        ),
        (
            {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [[0.5]], "y": [-1]}}},
            "user 'a': label -1 out of range",
        ),
    ],
)
def test_bad_layout_names_file_and_user(tmp_path, doc, pattern):
    _doc(tmp_path / "synthetic" / "data" / "train" / "bad.json", doc)
    with pytest.raises(LeafFormatError, match=pattern) as err:
        open_leaf("synthetic", tmp_path, "train")
    assert "bad.json" in str(err.value)


def test_user_in_two_files_is_refused(tmp_path):
    write_split(tmp_path, "synthetic", "train", {"a": {"x": [[1.0]], "y": [0]}}, file="0.json")
    write_split(tmp_path, "synthetic", "train", {"a": {"x": [[1.0]], "y": [0]}}, file="1.json")
    with pytest.raises(LeafFormatError, match=r"1\.json: user 'a' also appears in .*0\.json"):
        open_leaf("synthetic", tmp_path, "train")


def test_feature_sizes_differing_across_users_name_both(tmp_path):
    write_split(
        tmp_path, "synthetic", "train", {"a": {"x": [[1.0, 2.0]], "y": [0]}, "b": {"x": [[1.0]], "y": [0]}}
    )
    with pytest.raises(
        LeafFormatError, match=r"user 'b': x samples have shape \(1,\) but .*user 'a' has \(2,\)"
    ):
        open_leaf("synthetic", tmp_path, "train")


def test_femnist_checks_image_and_label(tmp_path):
    write_split(tmp_path, "femnist", "train", {"a": {"x": [[0.5] * 783], "y": [0]}})
    with pytest.raises(LeafFormatError, match="user 'a': FEMNIST images have 783 pixels"):
        open_leaf("femnist", tmp_path, "train", use_cache=False)
    write_split(tmp_path, "femnist", "train", {"a": {"x": [[0.5] * 784], "y": [62]}})
    with pytest.raises(LeafFormatError, match="user 'a': label 62 out of range"):
        open_leaf("femnist", tmp_path, "train", use_cache=False)


def test_shakespeare_unknown_character_is_named(tmp_path):
    write_split(tmp_path, "shakespeare", "train", {"bard": {"x": ["a" * 40 + "é" + "a" * 39], "y": ["b"]}})
    with pytest.raises(LeafFormatError, match="user 'bard': character 'é' is not in LEAF's 80-character"):
        open_leaf("shakespeare", tmp_path, "train")
    write_split(tmp_path, "shakespeare", "train", {"bard": {"x": ["a" * 80, "a" * 79], "y": ["b", "c"]}})
    with pytest.raises(LeafFormatError, match="user 'bard': x sequences have different lengths"):
        open_leaf("shakespeare", tmp_path, "train")


def test_sent140_bad_record_and_label(tmp_path):
    write_split(tmp_path, "sent140", "train", {"t": {"x": ["just text"], "y": [1]}})
    with pytest.raises(LeafFormatError, match=r"user 't': x\[0\] is not LEAF's tweet record"):
        open_leaf("sent140", tmp_path, "train")
    write_split(tmp_path, "sent140", "train", {"t": {"x": [tweet("hi")], "y": [4]}})
    with pytest.raises(LeafFormatError, match="user 't': label 4 out of range"):
        open_leaf("sent140", tmp_path, "train")


def test_reddit_bad_target(tmp_path):
    write_split(
        tmp_path, "reddit", "train", {"r": {"x": [[["a", "b"]]], "y": [{"target_tokens": [["b", "c"]]}]}}
    )
    with pytest.raises(LeafFormatError, match=r"user 'r': y\[0\] needs target_tokens and count_tokens"):
        open_leaf("reddit", tmp_path, "train")
    y = [{"target_tokens": [["b", "c"], ["c", "d"]], "count_tokens": [[1, 1]]}]
    write_split(tmp_path, "reddit", "train", {"r": {"x": [[["a", "b"]]], "y": y}})
    with pytest.raises(LeafFormatError, match="user 'r': comment 0 has 1 sequences"):
        open_leaf("reddit", tmp_path, "train")


def test_celeba_missing_image_names_file_user_and_image(tmp_path):
    pytest.importorskip("PIL")
    synthetic_tree(tmp_path, "celeba", num_users=2, seed=3)
    folder = tmp_path / "celeba" / "data" / "raw" / "img_align_celeba"
    victim = min(folder.iterdir())
    victim.unlink()
    with pytest.raises(
        LeafFormatError, match=rf"user '.*': image .*{victim.name} not found; pass image_dir="
    ):
        open_leaf("celeba", tmp_path, "train")  # sample 0, the first file, belongs to train


def test_bad_arguments(tmp_path):
    synthetic_tree(tmp_path, "synthetic", num_users=2)
    with pytest.raises(ValueError, match="'mnist' is not a LEAF data set"):
        open_leaf("mnist", tmp_path)
    with pytest.raises(ValueError, match="split 'valid'"):
        open_leaf("synthetic", tmp_path, "valid")
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        open_leaf("synthetic", tmp_path, max_len=0)
    with pytest.raises(ValueError, match="max_vocab must be None or an int >= 2"):
        open_leaf("synthetic", tmp_path, max_vocab=1)
    split = open_leaf("synthetic", tmp_path)
    with pytest.raises(IndexError, match="client_id 2 out of range"):
        split.client(2)
    with pytest.raises(TypeError, match="client_id must be an int"):
        split.client("0")
    with pytest.raises(KeyError, match="user 'nobody'"):
        split.client_id("nobody")


def test_celeba_missing_image_folder(tmp_path):
    write_split(tmp_path, "celeba", "train", {"c": {"x": ["1.jpg"], "y": [1]}})
    with pytest.raises(LeafDataMissingError, match=r"img_align_celeba is not a folder"):
        open_leaf("celeba", tmp_path, "train")

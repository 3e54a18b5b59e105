"""Find and read LEAF's JSON files: the train/test folders that LEAF's preprocessing writes.

LEAF's `preprocess.sh` leaves, for each data set, `<name>/data/train/*.json` and
`<name>/data/test/*.json`. Each file holds `{"users": [...], "num_samples": [...],
"user_data": {user: {"x": [...], "y": [...]}}}` (and optionally `"hierarchies"`, ignored here).
This module finds those files, checks that layout and yields one user at a time, so a split is
never held in memory as Python lists all at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastfl.errors import LeafDataMissingError, LeafFormatError

NAMES = ("femnist", "shakespeare", "sent140", "celeba", "reddit", "synthetic")
SPLITS = ("train", "test")
_PREPROCESS = {
    "femnist": "./preprocess.sh -s niid --sf 0.05 -k 0 -t sample",
    "shakespeare": "./preprocess.sh -s niid --sf 0.2 -k 0 -t sample -tf 0.8",
    "sent140": "./preprocess.sh -s niid --sf 0.05 -k 3 -t sample",
    "celeba": "./preprocess.sh -s niid --sf 0.05 -k 5 -t sample",
    "synthetic": "./preprocess.sh -s niid --sf 1.0 -k 5 -t sample --tf 0.6",
    "reddit": "(download LEAF's preprocessed reddit files as its data/reddit/README.md says)",
}


def check_name(name: str) -> str:
    """Return `name` if it is a LEAF data set this package reads, else raise ValueError."""
    if name not in NAMES:
        raise ValueError(f"dataset {name!r} is not a LEAF data set; choose one of {', '.join(NAMES)}")
    return name


def check_split(split: str) -> str:
    """Return `split` if it is "train" or "test", else raise ValueError."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not a LEAF split; choose 'train' or 'test'")
    return split


def split_dir(root: str | Path, name: str, split: str) -> Path:
    """Return the folder that holds the JSON files of one split: `root/name/data/split`."""
    return Path(root) / name / "data" / split


def missing_message(root: str | Path, name: str, split: str) -> str:
    """Explain where LEAF's preprocessed files must go (fastfl downloads nothing)."""
    where = split_dir(root, name, split)
    return (
        f"no LEAF {name} {split} data: expected JSON files in {where}/ "
        f"(LEAF's layout: {Path(root) / name}/data/train/*.json and .../data/test/*.json). "
        f"Run LEAF's preprocessing (https://github.com/TalwalkarLab/leaf, data/{name}: "
        f"{_PREPROCESS[name]}), then copy or symlink its data/{name}/data/train and data/test "
        f"folders to {Path(root) / name}/data/, or pass the folder that holds '{name}/' as root."
    )


def json_files(root: str | Path, name: str, split: str) -> list[Path]:
    """Return the split's JSON files in sorted order.

    Raises:
        LeafDataMissingError: the folder is missing or holds no JSON file; the message says
            where LEAF's preprocessed files go.
    """
    folder = split_dir(root, check_name(name), check_split(split))
    files = sorted(_scan(str(folder))) if folder.is_dir() else []
    if not files:
        raise LeafDataMissingError(missing_message(root, name, split))
    return [Path(f) for f in files]


def _scan(folder: str) -> list[str]:
    found: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                found += _scan(entry.path)
            elif entry.name.endswith(".json") and entry.is_file():
                found.append(entry.path)
    return found


def fingerprint(files: Sequence[Path], extra: dict[str, Any]) -> bytes:
    """Return a 32-byte digest of the files' names, sizes and modification times, plus `extra`.

    Size and mtime (nanoseconds) are what `make` and Python's own bytecode cache trust: a
    re-run of LEAF's preprocessing, an edit or a copy changes them, and checking costs one
    `stat` per file instead of re-reading gigabytes (hashing the JSON would cost as much as
    parsing it, which is what the cache exists to avoid). `rebuild=True` covers the rare
    edit that keeps both size and mtime.
    """
    entries = []
    for path in map(os.fspath, files):
        st = os.stat(path)
        folder, name = os.path.split(path)
        entries.append([os.path.basename(folder), name, st.st_size, st.st_mtime_ns])
    text = json.dumps({"files": entries, "extra": extra}, sort_keys=True)
    return hashlib.sha256(text.encode()).digest()


@dataclass(frozen=True, slots=True)
class RawUser:
    """One user's raw LEAF record: its name, the file it came from, and its x and y lists."""

    name: str
    file: Path
    x: list[Any]
    y: list[Any]

    def where(self) -> str:
        """Say where this user's record is, for error messages."""
        return f"{self.file}: user {self.name!r}"


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LeafFormatError(f"{path}: not valid JSON ({err}); re-run LEAF's preprocessing") from err
    if not isinstance(doc, dict):
        raise LeafFormatError(f"{path}: expected a JSON object with users, num_samples, user_data")
    for key, kind in (("users", list), ("num_samples", list), ("user_data", dict)):
        if not isinstance(doc.get(key), kind):
            raise LeafFormatError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    return doc


def read_file(path: Path) -> Iterator[RawUser]:
    """Yield the users of one LEAF JSON file in the order its `users` list gives.

    Raises:
        LeafFormatError: the file is not JSON, lacks a field, lists a user without data, has
            data for an unlisted user, or a user's counts disagree (x, y and num_samples).
    """
    doc = _load(path)
    users, counts, data = doc["users"], doc["num_samples"], doc["user_data"]
    if len(users) != len(counts):
        raise LeafFormatError(f"{path}: {len(users)} users but {len(counts)} num_samples entries")
    if len(set(users)) != len(users):
        raise LeafFormatError(f"{path}: 'users' lists a user twice")
    unlisted = set(data) - set(users)
    if unlisted:
        raise LeafFormatError(f"{path}: user_data has users not listed in 'users': {sorted(unlisted)[:5]}")
    for user, count in zip(users, counts, strict=True):
        if not isinstance(user, str):
            raise LeafFormatError(f"{path}: user name {user!r} is not a string")
        record = data.get(user)
        if not isinstance(record, dict) or "x" not in record or "y" not in record:
            raise LeafFormatError(f"{path}: user {user!r} is listed in 'users' but has no x/y in 'user_data'")
        x, y = record["x"], record["y"]
        if not isinstance(x, list) or not isinstance(y, list):
            raise LeafFormatError(f"{path}: user {user!r}: x and y must be lists")
        if isinstance(count, bool) or not isinstance(count, int) or not len(x) == len(y) == count:
            raise LeafFormatError(
                f"{path}: user {user!r}: num_samples says {count!r} but x has {len(x)} and y has {len(y)}"
            )
        yield RawUser(user, path, x, y)


def read_split(files: Sequence[Path]) -> Iterator[RawUser]:
    """Yield every user of a split, file by file, refusing a user that appears in two files."""
    seen: dict[str, Path] = {}
    for path in files:
        for user in read_file(path):
            if user.name in seen:
                raise LeafFormatError(f"{path}: user {user.name!r} also appears in {seen[user.name]}")
            seen[user.name] = path
            yield user

"""Hand-written LEAF JSON files with known contents, and a reader of JSON files as the oracle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_split(
    root: Path, name: str, split: str, users: dict[str, dict[str, Any]], file: str = "a.json"
) -> Path:
    """Write one LEAF JSON file holding `users` ({user: {"x": [...], "y": [...]}})."""
    folder = root / name / "data" / split
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "users": list(users),
        "num_samples": [len(d["y"]) for d in users.values()],
        "user_data": users,
    }
    path = folder / file
    path.write_text(json.dumps(doc))
    return path


def oracle(root: Path, name: str, split: str) -> dict[str, dict[str, Any]]:
    """All users of a split, read with json.load (the independent reading to compare with)."""
    users: dict[str, dict[str, Any]] = {}
    for path in sorted((root / name / "data" / split).glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["num_samples"] == [len(doc["user_data"][u]["y"]) for u in doc["users"]]
        users.update(doc["user_data"])
    return dict(sorted(users.items()))


def tweet(text: str) -> list[str]:
    return ["1", "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", "someone", text]

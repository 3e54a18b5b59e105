"""Write small (or benchmark-sized) LEAF-format trees with random content, for tests and examples.

`synthetic_tree(root, "femnist", ...)` writes `root/femnist/data/train/*.json` and
`.../test/*.json` with LEAF's field names and value shapes (and, for CelebA, the images under
`root/celeba/data/raw/img_align_celeba`). The content is random; only the format is LEAF's.
Users are spread over `num_files` files, as LEAF spreads them over `all_data_<k>` files.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fastfl.utils.dataset.leaf.source import check_name, split_dir
from fastfl.utils.dataset.leaf.text import ALL_LETTERS

_WORDS = ["good", "bad", "day", "love", "hate", "it's", "so", "the", "a", "fun", "rain", "cats"]
_PUNCT = [".", ",", "!", "?", ";"]
# FEMNIST pixels: 1.0 is paper, k/255 ink; most of an image is paper, as in LEAF's files.
_INK = [repr(k / 255.0) for k in range(256)]


def _femnist_x(rng: np.random.Generator, labels: np.ndarray, prototypes: np.ndarray) -> str:
    n = len(labels)
    codes = rng.integers(0, 256, size=(n, 784))
    ink = prototypes[labels] ^ (rng.random((n, 784)) < 0.05)  # each class has its own strokes
    table = np.array([*_INK, "1.0"], dtype=object)
    strs = table[np.where(ink, codes, 256)]
    return "[" + ", ".join("[" + ", ".join(row) + "]" for row in strs.tolist()) + "]"


def _sample(name: str, rng: np.random.Generator, user: str, i: int, ctx: dict[str, Any]) -> tuple[Any, Any]:
    if name == "synthetic":
        x = rng.normal(size=60)
        return x.round(6).tolist(), int(np.argmax(x @ ctx["weights"] + ctx["bias"][user]))
    if name == "shakespeare":
        chars = rng.choice(list(ALL_LETTERS), size=81)
        return "".join(chars[:80]), str(chars[80])
    if name == "sent140":
        words = [str(w) for w in rng.choice(_WORDS + _PUNCT, size=int(rng.integers(0, 12)))]
        text = " ".join(words) + (" Wow" if i % 2 else "")
        label = int(words.count("good") + words.count("love") > words.count("bad") + words.count("hate"))
        return [str(1000 + i), "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", user, text], label
    if name == "celeba":
        return _celeba_image(rng, ctx["images"], f"{user}_{i}.png"), int(rng.integers(0, 2))
    return _reddit_comment(rng)


def _celeba_image(rng: np.random.Generator, images: Path | None, file: str) -> str:
    from PIL import Image

    if images is None:
        raise ValueError("images folder missing")
    pixels = rng.integers(0, 256, size=(int(rng.integers(20, 30)), int(rng.integers(20, 30)), 3))
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(images / file)
    return file


def _reddit_comment(rng: np.random.Generator, seq_len: int = 10) -> tuple[Any, Any]:
    xs, ys, masks = [], [], []
    for _ in range(int(rng.integers(1, 4))):
        words = [str(w) for w in rng.choice(_WORDS, size=int(rng.integers(1, seq_len)))]
        tokens = ["<BOS>", *words, "<EOS>"][: seq_len + 1]
        pad = seq_len + 1 - len(tokens)
        xs.append(tokens[:-1] + ["<PAD>"] * pad)
        ys.append(tokens[1:] + ["<PAD>"] * pad)
        masks.append([1] * (len(tokens) - 1) + [0] * pad)
    return xs, {"target_tokens": ys, "count_tokens": masks}


def _counts(spec: int | tuple[int, int], rng: np.random.Generator, n: int) -> list[int]:
    if isinstance(spec, int):
        return [spec] * n
    return rng.integers(spec[0], spec[1] + 1, size=n).tolist()


def _write_file(path: Path, users: list[str], counts: list[int], body: Callable[[str, int], str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write(f'{{"users": {json.dumps(users)}, "num_samples": {json.dumps(counts)}, "user_data": {{')
        for k, (user, count) in enumerate(zip(users, counts, strict=True)):
            f.write(("" if k == 0 else ", ") + json.dumps(user) + ": " + body(user, count))
        f.write("}}")


def synthetic_tree(
    root: str | Path,
    name: str,
    *,
    num_users: int = 4,
    train_samples: int | tuple[int, int] = (3, 6),
    test_samples: int | tuple[int, int] = (1, 3),
    num_files: int = 1,
    seed: int = 0,
) -> Path:
    """Write a random LEAF-format tree for data set `name` under `root`; return `root/name`.

    Args:
        root: the folder that will hold `<name>/data/{train,test}/*.json`.
        name: femnist, shakespeare, sent140, celeba, reddit or synthetic.
        num_users: number of users (named `f_00000`, `f_00001`, ...).
        train_samples: samples per user in train, an int or an inclusive (low, high) range.
        test_samples: the same for test.
        num_files: number of JSON files per split; users are dealt to them in turn.
        seed: seed of the content.
    """
    check_name(name)
    if num_users < 0 or num_files < 1:
        raise ValueError(f"need num_users >= 0 and num_files >= 1, got {num_users} and {num_files}")
    rng = np.random.default_rng(seed)
    images = Path(root) / "celeba" / "data" / "raw" / "img_align_celeba" if name == "celeba" else None
    if images is not None:
        images.mkdir(parents=True, exist_ok=True)
    users = [f"f_{u:05d}" for u in range(num_users)]
    serial = itertools.count()  # unique sample numbers: CelebA image files never collide
    # Labels follow the inputs (class strokes, a linear teacher with a per-user bias, sentiment
    # words), so models trained on the generated data can learn something.
    ctx = {
        "images": images,
        "prototypes": rng.random((62, 784)) < 0.2,
        "weights": rng.normal(size=(60, 10)),
        "bias": {u: rng.normal(scale=0.5, size=10) for u in users},
    }

    def body(user: str, count: int) -> str:
        if name == "femnist":
            y = rng.integers(0, 62, size=count)
            x = _femnist_x(rng, y, ctx["prototypes"])
            return '{"x": ' + x + ', "y": ' + json.dumps(y.tolist()) + "}"
        samples = [_sample(name, rng, user, next(serial), ctx) for _ in range(count)]
        return json.dumps({"x": [s[0] for s in samples], "y": [s[1] for s in samples]})

    for split, spec in (("train", train_samples), ("test", test_samples)):
        counts = _counts(spec, rng, num_users)
        for k in range(num_files):
            path = split_dir(root, name, split) / f"all_data_{k}_niid_0_keep_0_{split}_9.json"
            _write_file(path, users[k::num_files], counts[k::num_files], body)
    return Path(root) / name

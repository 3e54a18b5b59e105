"""LEAF's text data sets: Shakespeare (80-character vocabulary), Sent140 and Reddit (word vocabularies).

- Shakespeare: x is a string of 80 characters, y the next character; both become indices into
  LEAF's `ALL_LETTERS` (80 characters, the table of LEAF's `language_utils.py`). A character
  outside it is an error (LEAF's `str.find` would give -1 and break the embedding later).
- Sent140: x is LEAF's raw tweet record `[id, date, query, user, text]`, y is 0 or 1. The text
  is split with LEAF's tokenizer (words and `.,!?;`), token ids come from a vocabulary built
  from the train split only: `<PAD>`=0, `<UNK>`=1, then tokens by falling count (ties by text).
  A client's tensors are padded or cut to `max_len` tokens.
- Reddit: x is a list of comments, each a list of token sequences; y holds per comment
  `target_tokens` and `count_tokens` (1 for a real token, 0 for padding). One sample is one
  sequence (what LEAF's model trains on); targets at padding positions are -100, the
  `ignore_index` of `torch.nn.CrossEntropyLoss`. The vocabulary is built like Sent140's (LEAF's
  own `reddit_vocab.pck` is a pickle, which fastfl does not load).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from fastfl.errors import LeafFormatError
from fastfl.utils.dataset.leaf.kinds import Arrays, Kind, Options, concat, int_labels
from fastfl.utils.dataset.leaf.source import RawUser

ALL_LETTERS = "\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}"
SPECIALS = ("<PAD>", "<UNK>")
PAD_ID, UNK_ID = 0, 1
IGNORE_INDEX = -100
_TOKEN_RE = re.compile(r"[\w']+|[.,!?;]")
_LETTER_TABLE = np.full(256, 255, dtype=np.uint8)
_LETTER_TABLE[[ord(c) for c in ALL_LETTERS]] = np.arange(len(ALL_LETTERS), dtype=np.uint8)


def letter_indices(text: str, user: RawUser) -> np.ndarray:
    """Return the indices of `text`'s characters in ALL_LETTERS, or raise naming the bad one."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    codes = np.where(points < 256, _LETTER_TABLE[np.minimum(points, 255)], 255)
    bad = np.flatnonzero(codes == 255)
    if bad.size:
        char = text[bad[0]]
        raise LeafFormatError(f"{user.where()}: character {char!r} is not in LEAF's 80-character vocabulary")
    return codes


def tokenize(text: str) -> list[str]:
    """Split a tweet like LEAF's `split_line`: runs of word characters or apostrophes, and .,!?;."""
    return _TOKEN_RE.findall(text)


def build_vocab(token_lists: Iterable[list[str]]) -> list[str]:
    """Return the vocabulary of a train split: the specials, then tokens by falling count, then text."""
    counts: Counter[str] = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    for special in SPECIALS:
        counts.pop(special, None)
    return [*SPECIALS, *sorted(counts, key=lambda t: (-counts[t], t))]


def _ids(tokens: list[str], index: dict[str, int]) -> list[int]:
    return [index.get(t, UNK_ID) for t in tokens]


def _cap_vocab_(ids: torch.Tensor, opts: Options) -> torch.Tensor:
    if opts.max_vocab is not None:
        ids[ids >= opts.max_vocab] = UNK_ID
    return ids


def _shakespeare(user: RawUser, opts: Options) -> dict[str, Any]:
    if not all(isinstance(s, str) for s in user.x) or not all(isinstance(c, str) for c in user.y):
        raise LeafFormatError(f"{user.where()}: Shakespeare x and y must be strings")
    lengths = {len(s) for s in user.x}
    if len(lengths) > 1:
        raise LeafFormatError(f"{user.where()}: x sequences have different lengths {sorted(lengths)}")
    if any(len(c) != 1 for c in user.y):
        raise LeafFormatError(f"{user.where()}: every y must be one character")
    x = letter_indices("".join(user.x), user).astype(np.uint8)
    y = letter_indices("".join(user.y), user).astype(np.uint8)
    return {"x": x.reshape(len(user.x), lengths.pop() if lengths else 0), "y": y}


def _shakespeare_tensors(a: Arrays, opts: Options) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(a["x"].astype(np.int64)), torch.from_numpy(a["y"].astype(np.int64))


def _sent140(user: RawUser, opts: Options) -> dict[str, Any]:
    tokens = []
    for i, record in enumerate(user.x):
        if not isinstance(record, list) or len(record) < 5 or not isinstance(record[4], str):
            raise LeafFormatError(
                f"{user.where()}: x[{i}] is not LEAF's tweet record [id, date, query, user, text]"
            )
        tokens.append(tokenize(record[4]))
    return {"tokens": tokens, "y": int_labels(user.y, user, 0, 2)}


def _sent140_finish(
    parts: list[dict[str, Any]], opts: Options, vocab: list[str] | None
) -> tuple[Arrays, list[str]]:
    if vocab is None:
        vocab = build_vocab(t for p in parts for t in p["tokens"])
    index = {t: i for i, t in enumerate(vocab)}
    seqs = [_ids(t, index) for p in parts for t in p["tokens"]]
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(np.array([len(s) for s in seqs], dtype=np.int64), out=offsets[1:])
    flat = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(offsets[-1]))
    y = concat([{"y": p["y"], "where": p["where"]} for p in parts], opts, None)[0]["y"]
    return {"x": flat, "x_offsets": offsets, "y": y}, vocab


def _sent140_tensors(a: Arrays, opts: Options) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = a["x_offsets"] - a["x_offsets"][0]
    lengths = np.minimum(np.diff(offsets), opts.max_len)
    cols = np.arange(opts.max_len)
    mask = cols[None, :] < lengths[:, None]
    out = np.zeros((len(lengths), opts.max_len), dtype=np.int64)
    out[mask] = a["x"][(offsets[:-1, None] + cols[None, :])[mask]]
    return _cap_vocab_(torch.from_numpy(out), opts), torch.from_numpy(np.array(a["y"]))


def _reddit_sequences(seqs: Any, user: RawUser, i: int, what: str) -> list[list[str]]:
    ok = isinstance(seqs, list) and all(
        isinstance(s, list) and all(isinstance(t, str) for t in s) for s in seqs
    )
    if not ok:
        raise LeafFormatError(f"{user.where()}: comment {i}: {what} must be a list of token lists")
    return seqs


def _reddit(user: RawUser, opts: Options) -> dict[str, Any]:
    xs, ys, masks = [], [], []
    for i, (comment, target) in enumerate(zip(user.x, user.y, strict=True)):
        if not isinstance(target, dict) or "target_tokens" not in target or "count_tokens" not in target:
            raise LeafFormatError(f"{user.where()}: y[{i}] needs target_tokens and count_tokens")
        x = _reddit_sequences(comment, user, i, "x")
        y = _reddit_sequences(target["target_tokens"], user, i, "target_tokens")
        mask = target["count_tokens"]
        if not isinstance(mask, list) or not len(x) == len(y) == len(mask):
            raise LeafFormatError(
                f"{user.where()}: comment {i} has {len(x)} sequences but target_tokens/count_tokens disagree"
            )
        xs += x
        ys += y
        masks += mask
    lengths = {len(s) for s in xs} | {len(s) for s in ys} | {len(m) for m in masks}
    if len(lengths) > 1:
        raise LeafFormatError(f"{user.where()}: sequences have different lengths {sorted(lengths)}")
    mask_arr = np.asarray(masks)
    if mask_arr.size and (mask_arr.dtype.kind not in "iubf" or not np.isin(mask_arr, (0, 1)).all()):
        raise LeafFormatError(f"{user.where()}: count_tokens must hold 0/1 numbers")
    return {"tokens": xs, "y": ys, "mask": mask_arr.reshape(len(xs), -1).astype(bool)}


def _reddit_finish(
    parts: list[dict[str, Any]], opts: Options, vocab: list[str] | None
) -> tuple[Arrays, list[str]]:
    if vocab is None:
        vocab = build_vocab(s for p in parts for key in ("tokens", "y") for s in p[key])
    index = {t: i for i, t in enumerate(vocab)}
    encoded = []
    for p in parts:
        x = np.asarray([_ids(s, index) for s in p["tokens"]], dtype=np.int32)
        y = np.asarray([_ids(s, index) for s in p["y"]], dtype=np.int32)
        y[~p["mask"]] = IGNORE_INDEX
        encoded.append(
            {"x": x.reshape(len(p["y"]), -1), "y": y.reshape(len(p["y"]), -1), "where": p["where"]}
        )
    return concat(encoded, opts, None)[0], vocab


def _reddit_tensors(a: Arrays, opts: Options) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(a["x"].astype(np.int64))
    y = torch.from_numpy(a["y"].astype(np.int64))
    return _cap_vocab_(x, opts), _cap_vocab_(y, opts)


SHAKESPEARE = Kind("shakespeare", _shakespeare, concat, _shakespeare_tensors)
SENT140 = Kind("sent140", _sent140, _sent140_finish, _sent140_tensors, uses_vocab=True)
REDDIT = Kind("reddit", _reddit, _reddit_finish, _reddit_tensors, uses_vocab=True)

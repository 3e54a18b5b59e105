"""How each LEAF data set's raw x/y records become arrays, and arrays become client tensors.

A `Kind` bundles three steps: `convert` one user's raw JSON lists into numpy arrays (checking
LEAF's shapes and value types), `finish` the split (concatenate users; the text sets also build
or apply their vocabulary there, see `text.py`), and `tensors` that turn one client's stored
arrays into the `(data, targets)` tensors its Dataset serves. The image and numeric sets live
here; Shakespeare, Sent140 and Reddit live in `text.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastfl.errors import LeafFormatError
from fastfl.utils.dataset.leaf.source import RawUser

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Options:
    """Reader options: CelebA's image folder and size, the text sets' length and vocabulary cap."""

    image_dir: Path | None = None
    image_size: int = 84
    max_len: int = 25
    max_vocab: int | None = None


@dataclass(frozen=True, slots=True)
class Kind:
    """The three conversion steps of one LEAF data set (see the module docstring)."""

    name: str
    convert: Callable[[RawUser, Options], dict[str, Any]]
    finish: Callable[[list[dict[str, Any]], Options, list[str] | None], tuple[Arrays, list[str] | None]]
    tensors: Callable[[Arrays, Options], tuple[torch.Tensor, torch.Tensor]]
    uses_vocab: bool = False


def numeric_matrix(rows: list[Any], user: RawUser, what: str) -> np.ndarray:
    """Return `rows` as a 2-D numeric array, refusing ragged rows, strings and booleans."""
    try:
        arr = np.asarray(rows)
    except ValueError as err:
        raise LeafFormatError(f"{user.where()}: {what} rows have different lengths ({err})") from err
    if arr.size == 0:
        return np.zeros((len(rows), 0), dtype=np.float64)
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise LeafFormatError(f"{user.where()}: {what} must be a list of equal-length lists of numbers")
    return arr


def int_labels(values: list[Any], user: RawUser, low: int, high: int | None) -> np.ndarray:
    """Return `values` as int64 labels in [low, high) (high None: unbounded), else raise."""
    arr = np.asarray(values)
    binary = high == 2 and arr.dtype.kind == "b"
    if arr.size and (arr.ndim != 1 or (arr.dtype.kind not in "iu" and not binary)):
        raise LeafFormatError(f"{user.where()}: y must be a list of integer labels")
    arr = arr.astype(np.int64)
    bad = (arr < low) | (arr >= high if high is not None else False)
    if bad.any():
        top = "" if high is None else f", below {high}"
        raise LeafFormatError(f"{user.where()}: label {arr[bad][0]} out of range (need >= {low}{top})")
    return arr


def concat(parts: list[dict[str, Any]], opts: Options, vocab: list[str] | None) -> tuple[Arrays, None]:
    """Concatenate the users' arrays, checking that all samples have one shape across users.

    Each part carries `"where"` (file and user) so a mismatch names both users involved.
    """
    out: Arrays = {}
    for key in [k for k in parts[0] if k != "where"] if parts else []:
        full = [p for p in parts if len(p[key])]
        for p in full[1:]:
            if p[key].shape[1:] != full[0][key].shape[1:]:
                raise LeafFormatError(
                    f"{p['where']}: {key} samples have shape {p[key].shape[1:]} but "
                    f"{full[0]['where']} has {full[0][key].shape[1:]}"
                )
        out[key] = np.concatenate([p[key] for p in full or parts[:1]])
    return out, None


def _femnist(user: RawUser, opts: Options) -> dict[str, Any]:
    x = numeric_matrix(user.x, user, "x").astype(np.float32)
    side = round(x.shape[1] ** 0.5)
    if x.size and side * side != x.shape[1]:
        raise LeafFormatError(f"{user.where()}: FEMNIST images have {x.shape[1]} pixels, not a square")
    return {"x": x, "y": int_labels(user.y, user, 0, 62)}


def _femnist_tensors(a: Arrays, opts: Options) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.array(a["x"]))
    side = round(x.shape[1] ** 0.5)
    return x.view(-1, 1, side, side), torch.from_numpy(np.array(a["y"]))


def _synthetic(user: RawUser, opts: Options) -> dict[str, Any]:
    x = numeric_matrix(user.x, user, "x").astype(np.float32)
    return {"x": x, "y": int_labels(user.y, user, 0, None)}


def _plain_tensors(a: Arrays, opts: Options) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.array(a["x"])), torch.from_numpy(np.array(a["y"]))


def _open_image(path: Path, size: int, user: RawUser) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError("reading CelebA needs Pillow: pip install pillow (matplotlib brings it)") from err
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError as err:
        raise LeafFormatError(
            f"{user.where()}: image {path} not found; pass image_dir= the folder holding LEAF's "
            "img_align_celeba images"
        ) from err
    except OSError as err:
        raise LeafFormatError(f"{user.where()}: cannot read image {path} ({err})") from err


def _celeba(user: RawUser, opts: Options) -> dict[str, Any]:
    if opts.image_dir is None:
        raise ValueError("CelebA needs image_dir, the folder of LEAF's img_align_celeba images")
    size = opts.image_size
    x = np.empty((len(user.x), size, size, 3), dtype=np.uint8)
    for i, name in enumerate(user.x):
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise LeafFormatError(f"{user.where()}: x[{i}] = {name!r} is not an image file name")
        x[i] = _open_image(opts.image_dir / name, size, user)
    return {"x": x, "y": int_labels(user.y, user, 0, 2)}


def _celeba_tensors(a: Arrays, opts: Options) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.array(a["x"])).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    return x.contiguous(), torch.from_numpy(np.array(a["y"]))


FEMNIST = Kind("femnist", _femnist, concat, _femnist_tensors)
SYNTHETIC = Kind("synthetic", _synthetic, concat, _plain_tensors)
CELEBA = Kind("celeba", _celeba, concat, _celeba_tensors)


def kind_of(name: str) -> Kind:
    """Return the Kind of a LEAF data set name."""
    from fastfl.utils.dataset.leaf import text

    table = {
        "femnist": FEMNIST,
        "synthetic": SYNTHETIC,
        "celeba": CELEBA,
        "shakespeare": text.SHAKESPEARE,
        "sent140": text.SENT140,
        "reddit": text.REDDIT,
    }
    return table[name]

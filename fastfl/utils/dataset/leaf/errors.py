"""The errors raised when LEAF data or its cache is missing, malformed or corrupt."""

from __future__ import annotations

from fastfl.errors import FastFLError


class LeafDataMissingError(FastFLError, FileNotFoundError):
    """LEAF's preprocessed JSON files are not where fastfl looks for them."""


class LeafFormatError(FastFLError, ValueError):
    """A LEAF JSON file (or an image it names) does not have LEAF's layout; names the file and user."""


class LeafCacheError(FastFLError, ValueError):
    """A cache file is stale, truncated or corrupt (fastfl rebuilds it from the JSON files)."""

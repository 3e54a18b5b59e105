"""Compressors whose bytes really shrink on the wire (FedLab 1.3's path, `fastfl.contrib.compressor`).

| class | codec | bytes for d float32 elements |
|---|---|---|
| QSGDCompressor(s=...) | 1 "qsgd" | 16 + ceil(d * (1 + bit_length(s)) / 8) |
| TopkCompressor(ratio), RandomKCompressor(ratio), DGCCompressor(ratio) | 2 "sparse" | 16 + pad8(4k) + 4k, k = ceil(ratio*d) |
| CastCompressor(float16 / bfloat16) | none (the wire's dtype narrowing) | 2d |

Each is an encoder/decoder pair (`encode(x, client) -> uint8 blob`, `decode(blob, shape, dtype)`)
whose passes run in fastfl's kernels (`fastfl.ops.compress`); per-client state lives in flat
buffers and is saved with `state_dict()`. docs/compression.md has the layouts and the proofs.
"""

from __future__ import annotations

from fastfl.contrib.compressor import _blob
from fastfl.contrib.compressor.base import Compressor
from fastfl.contrib.compressor.cast import CastCompressor
from fastfl.contrib.compressor.dgc import DGCCompressor
from fastfl.contrib.compressor.memory import FlatMemory
from fastfl.contrib.compressor.qsgd import QSGDCompressor
from fastfl.contrib.compressor.sparse import RandomKCompressor, TopkCompressor
from fastfl.contrib.compressor.uplink import CompressedUplink
from fastfl.core.communicator.codecs import Codec, register_codec

__all__ = [
    "QSGD_CODEC",
    "SPARSE_CODEC",
    "CastCompressor",
    "CompressedUplink",
    "Compressor",
    "DGCCompressor",
    "FlatMemory",
    "QSGDCompressor",
    "RandomKCompressor",
    "TopkCompressor",
]

# The wire's codecs (contract C5). Their `encode` is a default compressor (QSGD s=127; top-k 1%
# without error feedback) for code that packs plain tensors by codec name; decoding reads
# everything it needs from the blob, so it serves every compressor of the codec.
QSGD_CODEC = Codec(QSGDCompressor.code, QSGDCompressor.name, QSGDCompressor(s=127).encode, _blob.qsgd_unblob)
SPARSE_CODEC = Codec(
    TopkCompressor.code,
    TopkCompressor.name,
    TopkCompressor(0.01, error_feedback=False).encode,
    _blob.sparse_unblob,
)
register_codec(QSGD_CODEC)
register_codec(SPARSE_CODEC)

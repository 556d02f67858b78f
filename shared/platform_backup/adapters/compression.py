"""Compressing the dump: the compressor for each algorithm, its default level and tuning, and
how the manifest describes them."""

from __future__ import annotations

import zlib
from typing import Any, Literal

import zstandard

Compression = Literal["zstd", "gzip"]

# Tuned zstd 1: on two shared cores CPU is what a backup's duration is made of, and restoring
# needs only a 128 KiB window (docs/decisions.md, "The pipeline"). Keys: python-zstandard's.
LEVELS: dict[str, int] = {"zstd": 1, "gzip": 6}
ZSTD_TUNING: dict[str, int] = {"window_log": 17, "hash_log": 11}
# The same, as the manifest records them (zstd's camel-cased names).
_TUNING_NAMES: dict[str, str] = {"window_log": "windowLog", "hash_log": "hashLog"}
CONTENT_TYPES: dict[str, str] = {"zstd": "application/zstd", "gzip": "application/gzip"}


def _zstd_tuning(kind: Compression, level: int) -> dict[str, int]:
    return ZSTD_TUNING if kind == "zstd" and level == LEVELS["zstd"] else {}


def compressor(kind: Compression, level: int) -> Any:
    if kind == "zstd":
        params = zstandard.ZstdCompressionParameters.from_level(level, **_zstd_tuning(kind, level))
        return zstandard.ZstdCompressor(compression_params=params).compressobj()
    return zlib.compressobj(level, zlib.DEFLATED, 31)


def described(kind: Compression, level: int) -> dict[str, Any]:
    """The compression as the manifest records it."""
    return {
        "algorithm": kind,
        "level": level,
        **{_TUNING_NAMES[name]: value for name, value in _zstd_tuning(kind, level).items()},
    }

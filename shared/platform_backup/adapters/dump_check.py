"""The restore's statement check on the compressed dump as it streams past the checksum: each
chunk decompressed and fed to the domain's check (domain/dump_statements.py), nothing kept but
the line and statement it is in."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import zstandard

from platform_backup.adapters.mysql_restore import decompressor
from platform_backup.domain.dump_statements import DumpStatementCheck


class _StreamCheck:
    def __init__(self, compression: str, databases: Sequence[str]) -> None:
        self._decompress = decompressor(compression)
        self._check = DumpStatementCheck(databases)
        self._broken: str | None = None

    def feed(self, compressed: bytes) -> None:
        if self._broken is not None or self._check.refusal is not None:
            return
        try:
            raw = self._decompress.decompress(compressed)
        except (zstandard.ZstdError, zlib.error) as exc:
            self._broken = f"the dump cannot be decompressed ({exc})"
            return
        self._check.feed(raw)

    def refusal(self) -> str | None:
        if self._broken is not None:
            return self._broken
        found = self._check.finish()
        return None if found is None else str(found)


class MariaDbDumpChecks:
    """What a restore may apply: ``start`` one check per pass over a copy."""

    def start(self, compression: str, databases: Sequence[str]) -> _StreamCheck:
        return _StreamCheck(compression, databases)

"""Applying a dump to a MariaDB server: the compressed stream is decompressed, its database
names rewritten (adapters/dump_rewrite.py) and fed to the ``mariadb`` client's stdin as it
comes, with memory that does not grow with the database. The password stays in the session's
option file (adapters/mariadb.py)."""

from __future__ import annotations

import contextlib
import shutil

# B404: the MariaDB tools run as argv lists, never through a shell.
import subprocess  # nosec B404
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import zstandard

from platform_backup.adapters.db_privileges import check_restore_rights
from platform_backup.adapters.dump_rewrite import DumpRewriter, quote
from platform_backup.adapters.mariadb import DbConnection, MariaDbTools, in_list, session
from platform_backup.adapters.parallel_restore import apply_phases
from platform_backup.adapters.schema_objects import inspect_objects
from platform_backup.domain.frame_index import Frame, Phase
from platform_backup.services.ports import Applied, Existing, TargetObjects, TargetSettings

# The client reads the dump as the server sent it: binary mode keeps a \0 or \r in the text from
# being taken for a client command; the packet limit is the server's largest.
CLIENT_OPTIONS: tuple[str, ...] = ("--binary-mode", "--max-allowed-packet=1G", "--batch")
# Tests swap the client for a wrapper that fails mid-way.
DEFAULT_TOOLS = MariaDbTools()


def decompressor(compression: str) -> Any:
    if compression == "zstd":
        # A framed backup is many frames one after the other (adapters/dump_frames.py).
        return zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    if compression == "gzip":
        return zlib.decompressobj(31)
    raise ValueError(f"unknown compression {compression}")


def apply_dump(
    conn: DbConnection,
    chunks: Iterable[bytes],
    compression: str,
    names: Mapping[str, str],
    existing: Existing,
    progress: Callable[[int], None],
    on_start: Callable[[], None],
) -> Applied:
    """Feeds the dump to the client (``existing``: DumpRewriter).
    ``on_start`` runs once, just before the first statement goes out (from then on the target
    may have changed); ``progress`` gets the raw bytes fed so far after every chunk and may raise
    to stop (the client is killed, nothing more runs)."""
    rewriter = DumpRewriter(names, existing)
    decompress = decompressor(compression)
    with session(conn, DEFAULT_TOOLS) as db:
        stderr_path = db.workdir / "client.err"
        binary = shutil.which(db.tools.client) or db.tools.client
        with stderr_path.open("wb") as stderr:
            # B603: an argv list, no shell; the arguments are ours, secrets go in a file.
            proc = subprocess.Popen(  # nosec B603
                db.argv(binary, *CLIENT_OPTIONS),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=db.child_env(),
            )
        assert proc.stdin is not None  # nosec B101  # narrows a type, not a check
        raw_bytes = 0
        started = False
        try:
            try:
                for compressed in chunks:
                    raw = decompress.decompress(compressed)
                    out = rewriter.feed(raw)
                    if out and not started:
                        on_start()
                        started = True
                    proc.stdin.write(out)
                    raw_bytes += len(raw)
                    progress(raw_bytes)
                proc.stdin.write(rewriter.flush())
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the client stopped reading: its exit code and error output say why
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        text = stderr_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()
        return Applied(raw_bytes, code, rewriter.completed, db.redact(text))


class MariaDbTarget:
    """The restore's target server: what exists there, applying, counting and dropping. A
    parallel restore defers the keys of tables with ``defer_keys_from`` bytes of rows or more."""

    def __init__(self, defer_keys_from: int) -> None:
        self._defer_keys_from = defer_keys_from

    def existing(self, conn: DbConnection, databases: Sequence[str]) -> list[str]:
        with session(conn, DEFAULT_TOOLS) as db:
            rows = db.query(
                # B608: the names are quoted (in_list/_qualified), never raw input.
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"  # nosec B608
                f" WHERE SCHEMA_NAME IN ({in_list(databases)})"
            )
        return sorted(row[0] for row in rows)

    def objects(self, conn: DbConnection, databases: Sequence[str]) -> TargetObjects:
        with session(conn, DEFAULT_TOOLS) as db:
            return inspect_objects(db, databases)

    def row_counts(self, conn: DbConnection, tables: Sequence[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        with session(conn, DEFAULT_TOOLS) as db:
            # One statement per batch of tables keeps the client calls few on big schemas.
            for start in range(0, len(tables), 100):
                batch = tables[start : start + 100]
                union = " UNION ALL ".join(
                    # B608: the names are quoted (in_list/_qualified), never raw input.
                    f"SELECT '{i}', COUNT(*) FROM {_qualified(name)}"  # nosec B608
                    for i, name in enumerate(batch, start)
                )
                for index, count in db.query(union):
                    counts[tables[int(index)]] = int(count)
        return counts

    def drop(self, conn: DbConnection, databases: Sequence[str]) -> None:
        with session(conn, DEFAULT_TOOLS) as db:
            db.query("; ".join(f"DROP DATABASE IF EXISTS {quote(name)}" for name in databases))

    def settings(self, conn: DbConnection) -> TargetSettings:
        with session(conn, DEFAULT_TOOLS) as db:
            ((log_bin, trusts, packet, server),), ((supers,),) = db.query_many(
                [
                    "SELECT @@log_bin, @@log_bin_trust_function_creators, @@max_allowed_packet,"
                    " CONCAT_WS(':', @@hostname, @@port, @@datadir)",
                    "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES"
                    " WHERE PRIVILEGE_TYPE = 'SUPER' AND GRANTEE = CONCAT(\"'\","
                    " REPLACE(CURRENT_USER(), '@', \"'@'\"), \"'\")",
                ]
            )
        return TargetSettings(
            log_bin == "1", trusts == "1", int(supers) > 0, int(packet), str(server)
        )

    def check_rights(self, conn: DbConnection, databases: Sequence[str]) -> None:
        with session(conn, DEFAULT_TOOLS) as db:
            check_restore_rights(db, databases)

    def apply(self, conn: DbConnection, chunks: Iterable[bytes], **options: Any) -> Applied:
        return apply_dump(conn, chunks, **options)

    def apply_frames(
        self,
        conn: DbConnection,
        header: Sequence[Frame],
        phases: Sequence[Phase],
        read: Callable[[Sequence[Frame]], Iterator[bytes]],
        **options: Any,
    ) -> Applied:
        return apply_phases(
            conn,
            DEFAULT_TOOLS,
            CLIENT_OPTIONS,
            tuple(header),
            phases,
            read,
            defer_keys_from=self._defer_keys_from,
            **options,
        )


def _qualified(name: str) -> str:
    schema, table = name.split(".", 1)
    return f"{quote(schema)}.{quote(table)}"

"""Renames the databases of a mariadb-dump stream on the fly, for a restore into new databases.

mariadb-dump names a database in exactly three kinds of statement, each on a line of its own:
``CREATE DATABASE``, ``USE`` and the ``ALTER DATABASE`` it writes around routines whose
collation differs from their database's. Only those lines are rewritten; row data never holds a
raw newline (mariadb-dump escapes it), so a line that starts like one of them is one of them.
Names inside view, routine, trigger and event bodies are left alone (see docs/decisions.md);
the restore lists them as warnings.
"""

from __future__ import annotations

from collections.abc import Mapping

from platform_backup.domain.dump_rules import DATABASE_LINES
from platform_backup.errors import Unprocessable
from platform_backup.services.ports import Existing

_MARKERS = (b"\nCREATE DATABASE ", b"\nUSE ", b"\nALTER DATABASE ")
# The validation refuses any other spelling (domain/dump_rules.py), so these are all there are.
_CREATE, _USE, _ALTER = DATABASE_LINES
_COMPLETED = b"-- Dump completed"


class UnexpectedDatabase(Unprocessable):
    """The dump names a database the restore was not told about: stopped before it is touched."""

    code = "UnexpectedDatabase"


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _unquote(raw: bytes) -> str:
    return raw.decode("utf-8").replace("``", "`")


class DumpRewriter:
    """``feed`` the dump's text in any chunking and write what it returns to the client.

    ``names`` maps each backed-up database to its target. ``existing``: "replace" (in place)
    drops each target before the dump creates it, so objects added after the backup are gone too;
    "keep" (chosen tables in place) creates a target only where it is missing and drops nothing:
    only the tables whose frames follow are replaced, by the dump's own ``DROP TABLE IF EXISTS``;
    "new" removes the dump's ``IF NOT EXISTS``, so a target that appeared meanwhile makes the
    client fail instead of being written into.
    """

    def __init__(self, names: Mapping[str, str], existing: Existing) -> None:
        self._names = dict(names)
        self._existing = existing
        self._carry = b""
        self._tail = b""

    def feed(self, data: bytes) -> bytes:
        self._tail = (self._tail + data[-256:])[-256:]
        data = self._carry + data
        cut = data.rfind(b"\n") + 1
        self._carry = data[cut:]
        return self._rewrite(data[:cut])

    def flush(self) -> bytes:
        rest, self._carry = self._carry, b""
        return self._rewrite(rest)

    @property
    def completed(self) -> bool:
        """The stream fed so far ended with mariadb-dump's completion line."""
        last = self._tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return last.startswith(_COMPLETED)

    def _rewrite(self, text: bytes) -> bytes:
        # Text always starts at a line start; a leading newline lets one search find line 1 too.
        probe = b"\n" + text
        starts = sorted({found - 1 for marker in _MARKERS for found in _all(probe, marker)})
        if not starts:
            return text
        out: list[bytes] = []
        done = 0
        for start in starts:
            end = text.find(b"\n", start)
            end = len(text) if end < 0 else end
            out.append(text[done:start])
            out.append(self._line(text[start:end]))
            done = end
        out.append(text[done:])
        return b"".join(out)

    def _line(self, line: bytes) -> bytes:
        if match := _CREATE.fullmatch(line):
            target = self._target(match.group(2))
            rest = match.group(3)
            if self._existing == "keep":
                return b"CREATE DATABASE IF NOT EXISTS " + quote(target).encode() + rest
            if self._existing == "replace":
                drop = f"DROP DATABASE IF EXISTS {quote(target)};\n".encode()
                return drop + b"CREATE DATABASE " + quote(target).encode() + rest
            return b"CREATE DATABASE " + quote(target).encode() + rest
        if match := _USE.fullmatch(line):
            return b"USE " + quote(self._target(match.group(1))).encode() + match.group(2)
        if match := _ALTER.fullmatch(line):
            return (
                b"ALTER DATABASE " + quote(self._target(match.group(1))).encode() + match.group(2)
            )
        return line

    def _target(self, raw: bytes) -> str:
        name = _unquote(raw)
        target = self._names.get(name)
        if target is None:
            raise UnexpectedDatabase(
                f"the dump names database {quote(name)}, which the backup does not list: "
                "stopped so that no other database is written"
            )
        return target


def _all(text: bytes, marker: bytes) -> list[int]:
    found: list[int] = []
    at = text.find(marker)
    while at >= 0:
        found.append(at + 1)
        at = text.find(marker, at + 1)
    return found

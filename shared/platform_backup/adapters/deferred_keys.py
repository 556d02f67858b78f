"""Secondary keys of a big table built after its rows, as mydumper's ``--innodb-optimize-keys``
and MySQL Shell's ``deferTableIndexes`` do: InnoDB then builds each key once, sorted, instead of
inserting every row into it (on a table larger than the buffer pool, 0.62x the time in one
measured case; docs/decisions.md).

Only what cannot change the restored table is deferred: the plain ``KEY`` lines at the end of an
InnoDB table's key list (so that added again they land in the same order, and ``SHOW CREATE
TABLE`` is the source's), and none that a foreign key of the table or one referencing it needs.
A definition this does not read line by line (one it does not know) is applied as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_CREATE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(((?:\n  [^\n]*)+)\n\) ENGINE=(\w+)", re.M)
_COLUMN = re.compile(rb"^  `")
_KEYISH = re.compile(rb"^  (PRIMARY KEY|UNIQUE KEY|KEY|FULLTEXT KEY|SPATIAL KEY|VECTOR KEY) ")
_CONSTRAINT = re.compile(rb"^  CONSTRAINT ")
_FIRST_COLUMN = re.compile(rb"\(`((?:[^`]|``)+)`")
_FOREIGN = re.compile(
    rb"FOREIGN KEY \(`((?:[^`]|``)+)`.*? REFERENCES (?:`(?:[^`]|``)+`\.)?"
    rb"`((?:[^`]|``)+)` \(`((?:[^`]|``)+)`"
)


def referenced_columns(definitions: Iterable[bytes]) -> dict[bytes, set[bytes]]:
    """Table name -> the first columns other tables' foreign keys reference in it (a key
    starting there must exist when they are created)."""
    found: dict[bytes, set[bytes]] = {}
    for text in definitions:
        for match in _FOREIGN.finditer(text):
            found.setdefault(match.group(2), set()).add(match.group(3))
    return found


def defer_keys(text: bytes, referenced: dict[bytes, set[bytes]]) -> tuple[bytes, list[bytes]]:
    """``text`` with its tables' deferrable keys left out, and the ``ALTER TABLE`` statements
    that add them back (one per table, all its keys in one pass)."""
    statements: list[bytes] = []

    def table(match: re.Match[bytes]) -> bytes:
        name, body, engine = match.group(1, 2, 3)
        lines = body[1:].split(b"\n")
        if engine != b"InnoDB" or not all(
            _COLUMN.match(line) or _KEYISH.match(line) or _CONSTRAINT.match(line) for line in lines
        ):
            return match.group(0)
        needed = set(referenced.get(name, ()))
        for line in lines:
            if _CONSTRAINT.match(line) and (foreign := _FOREIGN.search(line)):
                needed.add(foreign.group(1))
        deferred: list[int] = []
        for i in reversed([i for i, line in enumerate(lines) if _KEYISH.match(line)]):
            first = _FIRST_COLUMN.search(lines[i])
            if not lines[i].startswith(b"  KEY ") or first is None or first.group(1) in needed:
                break
            deferred.insert(0, i)
        if not deferred:
            return match.group(0)
        kept = [line.removesuffix(b",") for i, line in enumerate(lines) if i not in deferred]
        added = b", ".join(b"ADD " + lines[i].strip().removesuffix(b",") for i in deferred)
        statements.append(b"ALTER TABLE `" + name + b"` " + added + b";\n")
        return b"CREATE TABLE `" + name + b"` (\n" + b",\n".join(kept) + b"\n) ENGINE=" + engine

    return _CREATE.sub(table, text), statements

"""Which secondary keys a parallel restore adds after the rows: never one the table's definition
would show in another place, nor one a foreign key needs (the restored tables' SHOW CREATE TABLE
against the source's is tests/integration/test_parallel_restore.py)."""

from __future__ import annotations

import re

from platform_backup.adapters.deferred_keys import defer_keys, referenced_columns
from tests.support.databases import FIXTURES


def create(name: str, *lines: str, engine: str = "InnoDB") -> bytes:
    body = ",\n".join(f"  {line}" for line in lines)
    return (
        f"DROP TABLE IF EXISTS `{name}`;\nCREATE TABLE `{name}` (\n{body}\n) ENGINE={engine}"
        " DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci;\n"
    ).encode()


EVENTS = create(
    "EventVO",
    "`id` bigint(20) NOT NULL AUTO_INCREMENT",
    "`vmUuid` varchar(32) NOT NULL",
    "`kind` varchar(32) NOT NULL",
    "`at` bigint(20) NOT NULL",
    "PRIMARY KEY (`id`)",
    "UNIQUE KEY `id` (`id`)",
    "KEY `idxKind` (`kind`,`at`)",
    "KEY `idxVm` (`vmUuid`) USING BTREE",
)


def test_a_big_tables_trailing_keys_wait_for_its_rows_and_come_back_in_their_order() -> None:
    stripped, statements = defer_keys(EVENTS, {})
    assert stripped == create(
        "EventVO",
        "`id` bigint(20) NOT NULL AUTO_INCREMENT",
        "`vmUuid` varchar(32) NOT NULL",
        "`kind` varchar(32) NOT NULL",
        "`at` bigint(20) NOT NULL",
        "PRIMARY KEY (`id`)",
        "UNIQUE KEY `id` (`id`)",
    )
    assert statements == [
        b"ALTER TABLE `EventVO` ADD KEY `idxKind` (`kind`,`at`),"
        b" ADD KEY `idxVm` (`vmUuid`) USING BTREE;\n"
    ]


def test_a_key_a_foreign_key_of_the_table_needs_stays_and_so_do_the_keys_before_it() -> None:
    child = create(
        "VmNicVO",
        "`uuid` varchar(32) NOT NULL",
        "`name` varchar(255) NOT NULL",
        "`vmUuid` varchar(32) NOT NULL",
        "PRIMARY KEY (`uuid`)",
        "KEY `idxName` (`name`)",
        "KEY `fkVmNicVOVm` (`vmUuid`)",
        "CONSTRAINT `fkVmNicVOVm` FOREIGN KEY (`vmUuid`) REFERENCES `VmVO` (`uuid`)"
        " ON DELETE CASCADE",
    )
    # idxName is not needed, but added back it would come after fkVmNicVOVm
    assert defer_keys(child, referenced_columns([child])) == (child, [])


def test_a_key_another_tables_foreign_key_references_stays() -> None:
    parent = create(
        "HostVO",
        "`id` bigint(20) NOT NULL",
        "`zone` varchar(32) NOT NULL",
        "`cluster` varchar(32) NOT NULL",
        "PRIMARY KEY (`id`)",
        "KEY `idxZone` (`zone`,`cluster`)",
    )
    child = create(
        "HostNicVO",
        "`id` bigint(20) NOT NULL",
        "`zone` varchar(32) NOT NULL",
        "`cluster` varchar(32) NOT NULL",
        "PRIMARY KEY (`id`)",
        "KEY `fkZone` (`zone`,`cluster`)",
        "CONSTRAINT `fkZone` FOREIGN KEY (`zone`, `cluster`) REFERENCES `HostVO`"
        " (`zone`, `cluster`)",
    )
    referenced = referenced_columns([parent, child])
    assert referenced == {b"HostVO": {b"zone"}}
    assert defer_keys(parent, referenced) == (parent, [])
    assert defer_keys(parent, {}) != (parent, [])


def test_fulltext_keys_other_engines_and_definitions_it_cannot_read_are_applied_as_they_are() -> (
    None
):
    fulltext = create(
        "NoteVO",
        "`id` int NOT NULL",
        "`text` text NOT NULL",
        "PRIMARY KEY (`id`)",
        "KEY `idxId` (`id`)",
        "FULLTEXT KEY `idxText` (`text`)",
    )
    myisam = create("LogVO", "`id` int NOT NULL", "KEY `idxId` (`id`)", engine="MyISAM")
    # a comment with a line break, as a dump may carry it
    unread = EVENTS.replace(b"NOT NULL AUTO_INCREMENT", b"NOT NULL COMMENT 'a\nb'")
    for text in (fulltext, myisam, unread):
        assert defer_keys(text, {}) == (text, [])


def test_on_the_zstack_schema_only_trailing_plain_keys_wait_and_no_foreign_key_loses_one() -> None:
    text = (FIXTURES / "zstack-platform-db.sql").read_bytes()
    referenced = referenced_columns([text])
    deferred_tables = 0
    for match in re.finditer(
        rb"^CREATE TABLE `([^`]+)` .*?\n\) ENGINE=[^\n]*\n", text, re.M | re.S
    ):
        original, name = match.group(0), match.group(1)
        stripped, statements = defer_keys(original, referenced)
        if not statements:
            assert stripped == original
            continue
        deferred_tables += 1
        lines = [line.rstrip(b",") for line in original.split(b"\n")]
        kept = [line.rstrip(b",") for line in stripped.split(b"\n")]
        gone = [line for line in lines if line not in kept]
        # Then what the definition lost is its last keys, plain ones, in their order
        keys = [line for line in lines if re.match(rb"  (PRIMARY |UNIQUE |FULLTEXT )?KEY ", line)]
        assert gone == keys[len(keys) - len(gone) :]
        assert all(line.startswith(b"  KEY ") for line in gone)
        # and the one statement adds back exactly those
        added = b", ".join(b"ADD " + line.strip() for line in gone)
        assert statements == [b"ALTER TABLE `" + name + b"` " + added + b";\n"]
        # and none starts with a column a foreign key of or to the table uses
        needed = referenced.get(name, set()) | set(
            re.findall(rb"FOREIGN KEY \(`([^`]+)`", original)
        )
        assert not {re.search(rb"\(`([^`]+)`", line).group(1) for line in gone} & needed  # type: ignore[union-attr]
    assert deferred_tables > 50

"""The rights a database user holds, asked of the server before a dump or a restore, so that a
missing one fails naming it instead of costing a silent loss (mariadb-dump leaves out triggers
without TRIGGER and routines without SELECT on mysql.proc, and exits 0) or a half-applied dump
failing on an "Access denied" that names no right.

Read from information_schema (USER_PRIVILEGES, SCHEMA_PRIVILEGES with its wildcards,
TABLE_PRIVILEGES): rights granted to the user itself. Rights held only through a role are not
seen: grant them to the user (README, "Security")."""

from __future__ import annotations

from collections.abc import Sequence

from platform_backup.adapters.mariadb import Session, in_list
from platform_backup.errors import Unprocessable

# What mariadb-dump needs for each protected database (LOCK TABLES and PROCESS are not needed
# with --single-transaction), and to read routine bodies on MariaDB 10.x: SELECT on mysql.proc.
DUMP_RIGHTS = ("SELECT", "SHOW VIEW", "TRIGGER", "EVENT")
# What applying a dump needs on each database it (re)creates; SET USER (or SUPER) besides, for
# objects whose DEFINER is another user, which the server names itself when it is missing.
RESTORE_RIGHTS = (
    "SELECT",
    "INSERT",
    "CREATE",
    "DROP",
    "ALTER",
    "LOCK TABLES",
    "CREATE VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "TRIGGER",
)
_ME = "CONCAT(\"'\", REPLACE(CURRENT_USER(), '@', \"'@'\"), \"'\")"


class MissingPrivileges(Unprocessable):
    """The database user lacks a right the job needs: nothing was done."""

    code = "MissingPrivileges"


def _held(db: Session, databases: Sequence[str]) -> tuple[dict[str, set[str]], bool]:
    """Per database, the rights the user holds on it (global ones included); and whether it
    may read mysql.proc."""
    names = " UNION ALL ".join(f"SELECT {in_list([name])} AS name" for name in databases)
    # B608: the database names are quoted by in_list, never raw input.
    rows_global, rows_schema, rows_proc = db.query_many(
        [
            f"SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {_ME}",  # nosec B608
            f"SELECT n.name, p.PRIVILEGE_TYPE FROM ({names}) n"  # nosec B608
            " JOIN information_schema.SCHEMA_PRIVILEGES p"
            " ON CONVERT(n.name USING utf8mb3) LIKE p.TABLE_SCHEMA"
            f" WHERE p.GRANTEE = {_ME}",
            "SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES"  # nosec B608
            f" WHERE GRANTEE = {_ME} AND TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'proc'"
            " UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES"
            f" WHERE GRANTEE = {_ME} AND 'mysql' LIKE TABLE_SCHEMA",
        ]
    )
    everywhere = {row[0] for row in rows_global}
    held = {name: set(everywhere) for name in databases}
    for name, right in rows_schema:
        held[name].add(right)
    reads_proc = "SELECT" in everywhere or any(row[0] == "SELECT" for row in rows_proc)
    return held, reads_proc


def _missing(held: dict[str, set[str]], rights: Sequence[str]) -> list[str]:
    return [
        f"{right} on `{name}`" for name, has in held.items() for right in rights if right not in has
    ]


def check_dump_rights(db: Session, databases: Sequence[str]) -> None:
    held, reads_proc = _held(db, databases)
    missing = _missing(held, DUMP_RIGHTS)
    if not reads_proc:
        missing.append("SELECT on mysql.proc (to read the routines)")
    if missing:
        raise MissingPrivileges(
            "the dump user lacks " + ", ".join(missing) + "; nothing was dumped (README, "
            '"Security", gives its grants)'
        )


def check_restore_rights(db: Session, databases: Sequence[str]) -> None:
    held, _ = _held(db, databases)
    if missing := _missing(held, RESTORE_RIGHTS):
        raise MissingPrivileges(
            "the restore user lacks " + ", ".join(missing) + "; nothing was applied (README, "
            '"Security", gives its grants)'
        )

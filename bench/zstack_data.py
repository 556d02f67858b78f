"""The bench's second data set, shaped like the platform database: the ZStack schema fixture
(../shared/fixtures/zstack-platform-db.sql, 618 tables, views, routines, triggers) loaded into a
bench database, its tables filled server-side with rows generated from each column's type
(bench/zstack_values.py), a few history, audit and event tables big and most tables small, to
BENCH_ZSTACK_MB (default 1024) MB of SQL. Built once; reused while every filled table holds its
planned rows.

Standalone: ``python -m bench.zstack_data [MB]`` builds (or reuses) it and prints its name."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from bench.zstack_values import Column, row_cap, sql_length, value
from platform_backup.adapters.dump_process import DUMP_OPTIONS

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "zstack-platform-db.sql"
# Shares of the SQL: a platform database is mostly its audit, event, usage-history, tag and task
# tables; the rest (hundreds of resource tables) is small.
BIG_TABLES = {
    "AuditsVO": 0.18,
    "EventRecordsVO": 0.12,
    "VmUsageHistoryVO": 0.12,
    "AlarmRecordsVO": 0.08,
    "SystemTagVO": 0.08,
    "ResourceVO": 0.07,
    "TaskProgressVO": 0.07,
    "RootVolumeUsageHistoryVO": 0.06,
    "DataVolumeUsageHistoryVO": 0.05,
    "AccountResourceRefVO": 0.05,
    "LongJobVO": 0.04,
    "SchedulerJobHistoryVO": 0.04,
    "LogVO": 0.04,
}
# The table a lost-table restore brings back (the VmInstanceVO view shows its rows).
SMALL_TABLE = "VmInstanceEO"
FIXED_ROWS = {SMALL_TABLE: 2000}
SMALL_MAX_ROWS = 200
# The row-size estimate leaves out the dump's escaping and INSERT framing: plan a little more.
ESTIMATE_MARGIN = 1.08
CHUNK_ROWS = 200_000


def mariadb(sql: str, database: str | None = None) -> str:
    opts = shlex.split(os.environ.get("MARIADB_OPTS", "-h 127.0.0.1 -u root"))
    done = subprocess.run(
        [
            "mariadb",
            *opts,
            "--default-character-set=utf8mb4",
            "-N",
            "-B",
            *filter(None, [database]),
        ],
        input=sql.encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"mariadb failed: {done.stderr.decode().strip()}")
    return done.stdout.decode()


def name(megabytes: int) -> str:
    return f"{os.environ.get('BENCH_DB', 'bench')}_zstack_{megabytes}mb"


def seeded_tables() -> set[str]:
    """Tables the fixture gives rows of its own: left as they are, unless big."""
    return set(re.findall(r"^INSERT INTO `(\w+)`", FIXTURE.read_text(), re.MULTILINE))


def schema_columns(db: str) -> dict[str, list[Column]]:
    unique = {
        tuple(line.split("\t"))
        for line in mariadb(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
            f" WHERE TABLE_SCHEMA = '{db}' AND NON_UNIQUE = 0"
        ).splitlines()
    }
    rows = mariadb(
        "SELECT c.TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE,"
        " IFNULL(CHARACTER_MAXIMUM_LENGTH, 0), IS_NULLABLE, EXTRA"
        " FROM information_schema.COLUMNS c JOIN information_schema.TABLES t"
        " ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME"
        f" WHERE c.TABLE_SCHEMA = '{db}' AND TABLE_TYPE = 'BASE TABLE'"
        " ORDER BY c.TABLE_NAME, ORDINAL_POSITION"
    )
    tables: dict[str, list[Column]] = {}
    for line in rows.splitlines():
        table, column, kind, ctype, length, nullable, extra = line.split("\t")
        tables.setdefault(table, []).append(
            Column(
                table,
                column,
                kind,
                ctype,
                int(length),
                nullable == "YES",
                extra,
                (table, column) in unique,
            )
        )
    return tables


def foreign_keys(db: str) -> dict[tuple[str, str], tuple[str, str]]:
    rows = mariadb(
        "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME"
        f" FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = '{db}'"
        " AND REFERENCED_TABLE_NAME IS NOT NULL"
    )
    keys = {}
    for line in rows.splitlines():
        table, column, parent, referenced = line.split("\t")
        keys[(table, column)] = (parent, referenced)
    return keys


class Generator:
    """Each column's value expression, foreign keys resolved to their filled parents."""

    def __init__(self, db: str, tables: dict[str, list[Column]], rows: dict[str, int]):
        self.tables = {t: {c.name: c for c in cols} for t, cols in tables.items()}
        self.keys = foreign_keys(db)
        self.rows = rows

    def expression(self, column: Column, seq: str, depth: int = 0) -> str:
        parent = self.keys.get((column.table, column.name))
        if parent and self.rows.get(parent[0], 0) > 0 and depth < 5:
            referenced = self.tables[parent[0]][parent[1]]
            rows = self.rows[parent[0]]
            picked = seq if column.unique else f"(1 + ({seq} - 1) % {rows})"
            return self.expression(referenced, picked, depth + 1)
        return value(column, seq)

    def select(self, table: str, seq: str = "seq") -> tuple[list[Column], list[str]]:
        columns = [c for c in self.tables[table].values() if not c.generated]
        return columns, [self.expression(c, seq) for c in columns]


def planned_rows(db: str, tables: dict[str, list[Column]], target: int) -> dict[str, int]:
    """Rows per table: the big tables by their share of ``target`` bytes over their estimated
    bytes per row, the others a few (fixed per name), none beyond a unique column's values."""
    seeded = seeded_tables()
    rows: dict[str, int] = {}
    for table in tables:
        if table in BIG_TABLES:
            continue
        count = FIXED_ROWS.get(table, 1 + zlib.crc32(table.encode()) % SMALL_MAX_ROWS)
        rows[table] = 0 if table in seeded else count
    generator = Generator(db, tables, rows)
    for table, share in BIG_TABLES.items():
        columns, expressions = generator.select(table)
        lengths = " + ".join(sql_length(c, e) for c, e in zip(columns, expressions, strict=True))
        per_row = float(
            mariadb(f"SELECT AVG({lengths} + {len(columns) + 2}) FROM seq_1_to_2000", db).strip()
        )
        rows[table] = int(share * target * ESTIMATE_MARGIN / per_row)
    for table, columns in tables.items():
        caps = [cap for cap in map(row_cap, columns) if cap is not None]
        rows[table] = min([rows[table], *caps])
    return rows


def counts(db: str, tables: list[str]) -> dict[str, int]:
    union = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM `{db}`.`{t}`" for t in tables)
    return {t: int(n) for t, n in (line.split("\t") for line in mariadb(union).splitlines())}


def stale(db: str, tables: dict[str, list[Column]], rows: dict[str, int]) -> list[str]:
    """Filled tables whose last row is not the one the generator makes now (it has changed
    since the build), found by one lookup each (the row's own key values lead the way)."""
    generator = Generator(db, tables, rows)
    probes = []
    for table in (t for t, n in rows.items() if n > 0):
        columns, expressions = generator.select(table, str(rows[table]))
        same = " AND ".join(
            f"`{c.name}` <=> {e}" for c, e in zip(columns, expressions, strict=True)
        )
        probes.append(f"SELECT '{table}', COUNT(*) FROM `{db}`.`{table}` WHERE {same}")
    found = mariadb(" UNION ALL ".join(probes), db)
    return [table for table, n in (line.split("\t") for line in found.splitlines()) if n == "0"]


def fill(db: str, tables: dict[str, list[Column]], rows: dict[str, int]) -> None:
    generator = Generator(db, tables, rows)
    small: list[str] = []
    for table in sorted(tables, key=lambda t: (t in BIG_TABLES, t)):
        if rows[table] == 0:
            continue
        columns, expressions = generator.select(table)
        names = ", ".join(f"`{c.name}`" for c in columns)
        chunks = [
            f"INSERT INTO `{table}` ({names}) SELECT {', '.join(expressions)}"
            f" FROM seq_{low}_to_{min(low + CHUNK_ROWS - 1, rows[table])};"
            for low in range(1, rows[table] + 1, CHUNK_ROWS)
        ]
        if table not in BIG_TABLES:
            small.extend(chunks)
            continue
        if small:
            run_fill(db, small, f"{len(small)} small tables")
            small = []
        run_fill(db, [f"DELETE FROM `{table}`;", *chunks], f"{table}: {rows[table]} rows")


def run_fill(db: str, statements: list[str], label: str) -> None:
    started = time.perf_counter()
    mariadb("SET SESSION foreign_key_checks = 0;\n" + "\n".join(statements), db)
    print(f"  filled {label} in {time.perf_counter() - started:.1f} s", flush=True)


def dump_bytes(db: str) -> int:
    opts = shlex.split(os.environ.get("MARIADB_OPTS", "-h 127.0.0.1 -u root"))
    dump = shlex.join(["mariadb-dump", *opts, *DUMP_OPTIONS, "--databases", db])
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{dump} | wc -c"], capture_output=True, check=True
    )
    return int(done.stdout)


def ensure(megabytes: int, log: Callable[[str], None] = print) -> str:
    """The ZStack-shaped database of about ``megabytes`` MB of SQL: reused when it exists with
    every planned row, else (re)built; its name."""
    db = name(megabytes)
    target = megabytes * 1_000_000
    exists = mariadb(f"SHOW DATABASES LIKE '{db}'").strip() == db
    if exists:
        tables = schema_columns(db)
        rows = planned_rows(db, tables, target)
        filled = [t for t, n in rows.items() if n > 0]
        found = counts(db, filled)
        wrong = [t for t in filled if found[t] != rows[t]] or stale(db, tables, rows)
        if not wrong:
            log(
                f"reusing `{db}`: its {len(filled)} filled tables of {len(tables)} hold exactly"
                f" the planned rows ({sum(rows.values())}), the last of each as generated now"
            )
            return db
        log(f"rebuilding `{db}`: {len(wrong)} tables differ from the plan (e.g. `{wrong[0]}`)")
    else:
        log(f"building `{db}` (no such database yet) from {FIXTURE}")
    started = time.perf_counter()
    mariadb(f"DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`")
    mariadb(FIXTURE.read_text(encoding="utf-8"), db)
    tables = schema_columns(db)
    rows = planned_rows(db, tables, target)
    fill(db, tables, rows)
    size = dump_bytes(db)
    log(
        f"built `{db}` in {time.perf_counter() - started:.0f} s: {len(tables)} tables,"
        f" {sum(rows.values())} rows generated, {size / 1e9:.2f} GB of SQL (mariadb-dump | wc -c)"
    )
    return db


if __name__ == "__main__":
    ensure(int(sys.argv[1]) if sys.argv[1:] else int(os.environ.get("BENCH_ZSTACK_MB", "1024")))

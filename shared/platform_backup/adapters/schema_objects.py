"""What a set of databases holds (tables, views, routines, triggers, events, definitions), read
from information_schema: listed in a backup's manifest, compared with a restore's target."""

from __future__ import annotations

from collections.abc import Sequence

from platform_backup.adapters.mariadb import Session, in_list
from platform_backup.services.ports import TargetObjects


def inspect_objects(db: Session, databases: Sequence[str]) -> TargetObjects:
    names = in_list(databases)
    listing = (
        ("view", "TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION", "VIEWS", "TABLE_SCHEMA"),
        (
            "routine",
            "ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_DEFINITION",
            "ROUTINES",
            "ROUTINE_SCHEMA",
        ),
        ("trigger", "TRIGGER_SCHEMA, TRIGGER_NAME, ACTION_STATEMENT", "TRIGGERS", "TRIGGER_SCHEMA"),
        ("event", "EVENT_SCHEMA, EVENT_NAME, EVENT_DEFINITION", "EVENTS", "EVENT_SCHEMA"),
    )
    statements = [
        # B608: the names are quoted (in_list/_qualified), never raw input.
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"  # nosec B608
        f" WHERE TABLE_SCHEMA IN ({names})"
    ]
    for _kind, columns, view, schema_column in listing:
        # A newline inside a definition would split the batch output's row: made a space.
        first, second, third = columns.split(", ")
        statements.append(
            # B608: the names are quoted (in_list/_qualified), never raw input.
            f"SELECT {first}, {second}, REPLACE(IFNULL({third}, ''), '\\n', ' ')"  # nosec B608
            f" FROM information_schema.{view} WHERE {schema_column} IN ({names})"
        )
    table_rows, *object_rows = db.query_many(statements)
    tables: set[str] = set()
    views: set[str] = set()
    for schema, name, kind in table_rows:
        (views if kind == "VIEW" else tables).add(f"{schema}.{name}")
    definitions: dict[str, str] = {}
    found: dict[str, set[str]] = {"view": views, "routine": set(), "trigger": set(), "event": set()}
    for (kind, *_), rows in zip(listing, object_rows, strict=True):
        for row in rows:
            schema, name, definition = row[0], row[1], "\t".join(row[2:])
            found[kind].add(f"{schema}.{name}")
            definitions[f"{kind} {schema}.{name}"] = definition
    return TargetObjects(
        tables, views, found["routine"], found["trigger"], found["event"], definitions
    )

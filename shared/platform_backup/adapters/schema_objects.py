"""What a set of databases holds (tables, views, routines, triggers, events, definitions), read
from information_schema: listed in a backup's manifest, compared with a restore's target."""

from __future__ import annotations

from collections.abc import Sequence

from platform_backup.adapters.mariadb import Session, in_list
from platform_backup.services.ports import TargetObjects


def inspect_objects(db: Session, databases: Sequence[str]) -> TargetObjects:
    names = in_list(databases)
    tables: set[str] = set()
    views: set[str] = set()
    for schema, name, kind in db.query(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA IN ({names})"
    ):
        (views if kind == "VIEW" else tables).add(f"{schema}.{name}")
    definitions: dict[str, str] = {}
    routines: set[str] = set()
    triggers: set[str] = set()
    events: set[str] = set()
    queries = (
        (views, "view", "TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION", "VIEWS", "TABLE_SCHEMA"),
        (
            routines,
            "routine",
            "ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_DEFINITION",
            "ROUTINES",
            "ROUTINE_SCHEMA",
        ),
        (
            triggers,
            "trigger",
            "TRIGGER_SCHEMA, TRIGGER_NAME, ACTION_STATEMENT",
            "TRIGGERS",
            "TRIGGER_SCHEMA",
        ),
        (events, "event", "EVENT_SCHEMA, EVENT_NAME, EVENT_DEFINITION", "EVENTS", "EVENT_SCHEMA"),
    )
    for found, kind, columns, view, schema_column in queries:
        # A newline inside a definition would split the batch output's row: made a space.
        first, second, third = columns.split(", ")
        for row in db.query(
            f"SELECT {first}, {second}, REPLACE(IFNULL({third}, ''), '\\n', ' ')"
            f" FROM information_schema.{view} WHERE {schema_column} IN ({names})"
        ):
            schema, name, definition = row[0], row[1], "\t".join(row[2:])
            found.add(f"{schema}.{name}")
            definitions[f"{kind} {schema}.{name}"] = definition
    return TargetObjects(tables, views, routines, triggers, events, definitions)

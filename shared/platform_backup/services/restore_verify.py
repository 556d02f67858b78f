"""Checking a restored target against the backup's manifest: every object it lists is there,
the tables' row counts, and warnings for what a renamed restore would still point at."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from platform_backup.domain.frame_index import FrameIndex
from platform_backup.domain.restore import Restore
from platform_backup.errors import VerifyFailed
from platform_backup.services.lease_keeper import LeaseKeeper
from platform_backup.services.ports import BackupSource, TargetServer


@dataclass(frozen=True)
class Verified:
    row_counts: dict[str, int]
    warnings: list[str]


class RestoreVerifier:
    def __init__(self, source: BackupSource, target: TargetServer) -> None:
        self._source = source
        self._target = target

    def verify(self, restore: Restore, connect: Callable[[], Any], keeper: LeaseKeeper) -> Verified:
        if restore.clientExitCode != 0 or not restore.dumpCompleted:
            raise VerifyFailed("the client did not apply the whole dump")
        copy = restore.sourceCopy
        if copy is None:
            raise VerifyFailed("the restore has no validated copy")
        manifest = self._source.manifest(copy)
        if restore.tables:
            return self._verify_tables(restore, manifest, connect(), keeper)
        expected, checked_kinds = expected_objects(manifest, restore.databases)
        conn = connect()
        found = self._target.objects(conn, list(restore.databases.values()))
        present = {
            "table": found.tables,
            "view": found.views,
            "routine": found.routines,
            "trigger": found.triggers,
            "event": found.events,
        }
        if restore.replay is not None:
            # The replay may have created, altered or dropped objects since the backup: what
            # is there now is the instant's state, counted.
            counts = self._target.row_counts(conn, sorted(found.tables))
            return Verified(counts, list(restore.warnings))
        missing = [f"{kind} {name}" for kind, name in expected if name not in present[kind]]
        if missing:
            raise VerifyFailed(
                f"{len(missing)} objects of the backup are missing in the target: "
                + ", ".join(missing[:20])
            )
        keeper.check()
        tables = sorted(name for kind, name in expected if kind == "table")
        counts = self._target.row_counts(conn, tables)
        warnings = [*restore.warnings, *foreign_references(found.definitions, restore.databases)]
        unchecked = {"view", "routine", "trigger"} - checked_kinds
        if unchecked:
            warnings.append(
                f"the backup's manifest does not list {', '.join(sorted(unchecked))}s: "
                "only its tables were checked"
            )
        return Verified(counts, warnings)

    def _verify_tables(
        self, restore: Restore, manifest: Mapping[str, Any], conn: Any, keeper: LeaseKeeper
    ) -> Verified:
        """Chosen tables (and views, with what they read): each is there, and (into new
        databases) nothing else was made (their triggers aside); in place the databases' other
        objects are the live ones, kept."""
        index = FrameIndex.from_manifest(manifest)
        if index is None:
            raise VerifyFailed("the backup's manifest lost its table index")
        tables, views = index.needs(restore.tables or [])

        def renamed(names: list[str]) -> set[str]:
            return {
                f"{restore.databases[database]}.{name}"
                for database, name in (qualified.split(".", 1) for qualified in names)
            }

        expected_tables, expected_views = renamed(tables), renamed(views)
        found = self._target.objects(conn, list(restore.databases.values()))
        missing = sorted((expected_tables - found.tables) | (expected_views - found.views))
        extra = (
            []
            if restore.in_place
            else sorted(
                (found.tables - expected_tables)
                | (found.views - expected_views)
                | found.routines
                | found.events
            )
        )
        if missing or extra:
            raise VerifyFailed(
                "the restored tables are not the chosen ones: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(missing[:20])}" if missing else "",
                        f"also made {', '.join(extra[:20])}" if extra else "",
                    )
                    if part
                )
            )
        keeper.check()
        views_made = {
            f"view {name}": found.definitions.get(f"view {name}", "") for name in expected_views
        }
        warnings = [*restore.warnings, *foreign_references(views_made, restore.databases)]
        return Verified(self._target.row_counts(conn, sorted(expected_tables)), warnings)


def expected_objects(
    manifest: Mapping[str, Any], names: Mapping[str, str]
) -> tuple[list[tuple[str, str]], set[str]]:
    """(kind, target database.name) of every object the manifest lists, and the kinds it lists."""
    expected: list[tuple[str, str]] = []
    kinds: set[str] = set()
    for kind, key in (
        ("table", "tables"),
        ("view", "views"),
        ("routine", "routines"),
        ("trigger", "triggers"),
        ("event", "events"),
    ):
        listed = manifest.get(key)
        if not isinstance(listed, list):
            continue
        kinds.add(kind)
        for entry in listed:
            database = names.get(str(entry.get("database")))
            if database is None:
                raise VerifyFailed(f"the manifest lists {kind} {entry} of an unknown database")
            expected.append((kind, f"{database}.{entry.get('name')}"))
    return expected, kinds


def foreign_references(definitions: Mapping[str, str], names: Mapping[str, str]) -> list[str]:
    """Objects whose definition names a backed-up database explicitly (``zstack.X``, also inside
    strings, as dynamic SQL does): restored under a new name, they would still act on the
    original. A string that only looks like one is listed too: a warning too many is cheap."""
    renamed = [old for old, new in names.items() if old != new]
    if not renamed:
        return []
    pattern = re.compile(r"(?<![\w$`])`?(" + "|".join(re.escape(n) for n in renamed) + r")`?\s*\.")
    warnings = []
    for what, definition in sorted(definitions.items()):
        found = sorted({m.group(1) for m in pattern.finditer(definition)})
        if found:
            warnings.append(
                f"{what} names the original database {', '.join(found)} explicitly: run, it "
                "may act on that database, not on the restored one"
            )
    return warnings

"""The manifest stored beside each backup object: what was dumped, from which server, with
which tool and options, how it was compressed, its size and SHA-256, the binlog position, and
the objects a restore verifies, and the frame index (where each table is in the object)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from platform_backup.adapters.mariadb import ServerInfo, Session
from platform_backup.adapters.schema_objects import inspect_objects
from platform_backup.domain.frame_index import FrameIndex


def manifest_objects(db: Session, databases: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The views, routines, triggers and events of ``databases``, as the backup's manifest lists
    them for a restore's verification (tables are listed with their engines already)."""
    found = inspect_objects(db, databases)

    def listed(names: set[str]) -> list[dict[str, str]]:
        pairs = sorted(name.split(".", 1) for name in names)
        return [{"database": database, "name": name} for database, name in pairs]

    return {
        "views": listed(found.views),
        "routines": listed(found.routines),
        "triggers": listed(found.triggers),
        "events": listed(found.events),
    }


def build_manifest(
    *,
    backup_id: str,
    plan_id: str,
    started_at: datetime,
    dump_finished_at: datetime,
    server: ServerInfo,
    client_version: str,
    databases: list[str],
    raw_bytes: int,
    compressed_bytes: int,
    sha256: str,
    compression: dict[str, Any],
    binlog: dict[str, Any] | None,
    dump_options: list[str],
    objects: dict[str, list[dict[str, str]]],
    frame_index: FrameIndex | None = None,
    execution_id: str | None = None,
    trigger: str | None = None,
) -> dict[str, Any]:
    tables = server.tables
    return {
        "formatVersion": 1,
        "backupId": backup_id,
        "planId": plan_id,
        "executionId": execution_id,
        "trigger": trigger,
        "startedAt": started_at.isoformat(),
        "dumpFinishedAt": dump_finished_at.isoformat(),
        "serverVersion": server.version,
        "clientVersion": client_version,
        "databases": databases,
        "tables": [
            {
                "database": t.database,
                "name": t.name,
                "engine": t.engine,
                "rowsEstimate": t.rows_estimate,
                "sizeBytes": t.size_bytes,
                "consistent": t.transactional,
            }
            for t in tables
        ],
        "nonTransactionalTables": [f"{t.database}.{t.name}" for t in tables if not t.transactional],
        "rawBytes": raw_bytes,
        "compressedBytes": compressed_bytes,
        "sha256": sha256,
        "compression": compression,
        "binlog": binlog,
        "dumpOptions": dump_options,
        **objects,
        # Where each table is in the object (domain/frame_index.py); absent: one frame.
        **({"frameIndex": frame_index.to_manifest()} if frame_index else {}),
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as stored."""
    return json.dumps(manifest, indent=1).encode()

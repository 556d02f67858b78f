"""The catalog's tie to storage: the keys a plan's backups are written under (the only keys the
service ever deletes or rebuilds from), and a backup record re-made from the manifest stored
beside its dump."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, NamedTuple, get_args

from pydantic import BaseModel, Field

from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.point_in_time import binlog_position
from platform_backup.domain.storage import Storage
from platform_backup.domain.trigger import Trigger

MANIFEST_SUFFIX = ".manifest.json"
# <storage prefix>pdb/<plan id>/<yyyy>/<mm>/<dd>/<hhmmss>Z-<backup id: 32 hex>.sql.zst
_KEY = re.compile(
    r"pdb/(?P<plan>[A-Za-z0-9_-]{1,128})/\d{4}/\d{2}/\d{2}/\d{6}Z-(?P<backup>[0-9a-f]{32})"
    r"\.sql\.zst(?P<manifest>\.manifest\.json)?"
)


def backup_key(prefix: str, plan_id: str, backup_id: str, started: datetime) -> str:
    """Keys no other writer shares: the storage's prefix, then the plan, then the backup id."""
    stamp = started.astimezone(UTC).strftime("%Y/%m/%d/%H%M%SZ")
    return f"{prefix}pdb/{plan_id}/{stamp}-{backup_id}.sql.zst"


class KeyOwner(NamedTuple):
    plan_id: str
    backup_id: str
    manifest: bool

    def dump_key(self, key: str) -> str:
        return key.removesuffix(MANIFEST_SUFFIX) if self.manifest else key


def key_owner(prefix: str, key: str) -> KeyOwner | None:
    """Whose backup ``key`` is, if it is exactly a key the service writes under ``prefix`` (a
    dump or its manifest); None for anything else, which the service never touches."""
    if not key.startswith(prefix):
        return None
    found = _KEY.fullmatch(key[len(prefix) :])
    if found is None:
        return None
    return KeyOwner(found["plan"], found["backup"], found["manifest"] is not None)


class ManifestRefused(ValueError):
    """A manifest that cannot describe the dump beside it (the reason is the message)."""


def _time(manifest: dict[str, Any], field: str) -> datetime:
    value = manifest.get(field)
    if not isinstance(value, str):
        raise ManifestRefused(f"its {field} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ManifestRefused(f"its {field} is not a time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def backup_from_manifest(
    manifest: dict[str, Any], owner: KeyOwner, storage: Storage, key: str, size: int
) -> Backup:
    """The record the executor wrote for this dump, as far as its manifest tells: what was
    dumped, its size and SHA-256, where in the binary log, and this storage's copy. A manifest
    written before it held the execution and the trigger gives a scheduled backup of an unknown
    execution."""
    if manifest.get("backupId") != owner.backup_id or manifest.get("planId") != owner.plan_id:
        raise ManifestRefused("its backupId or planId is not the one its key names")
    sha256 = manifest.get("sha256")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ManifestRefused("it holds no SHA-256")
    compressed = manifest.get("compressedBytes")
    if not isinstance(compressed, int) or compressed != size:
        raise ManifestRefused(f"it gives {compressed} bytes but the object holds {size}")
    started, finished = _time(manifest, "startedAt"), _time(manifest, "dumpFinishedAt")
    trigger = manifest.get("trigger")
    compression = manifest.get("compression")
    algorithm = compression.get("algorithm") if isinstance(compression, dict) else None
    databases = manifest.get("databases")
    binlog = manifest.get("binlog")
    return Backup(
        id=owner.backup_id,
        planId=owner.plan_id,
        executionId=str(manifest.get("executionId") or "unknown"),
        trigger=trigger if trigger in get_args(Trigger) else "schedule",
        createdAt=finished,
        rawBytes=int(manifest.get("rawBytes") or 0),
        compressedBytes=size,
        compression=str(algorithm or "zstd"),
        sha256=sha256,
        databases=[str(d) for d in databases] if isinstance(databases, list) else [],
        durationSeconds=round((finished - started).total_seconds(), 3),
        binlog=binlog_position(binlog) if isinstance(binlog, dict) else None,
        copies=[
            BackupCopy(
                storageId=storage.id,
                role=storage.role,
                bucket=storage.bucket,
                region=storage.region,
                key=key,
                manifestKey=key + MANIFEST_SUFFIX,
                bytes=size,
            )
        ],
    )


class CatalogEntry(BaseModel):
    key: str
    backupId: str | None = None
    planId: str | None = None
    reason: str | None = None


class CatalogRebuild(BaseModel):
    """What one rebuild call did with the storage's manifests, in key order."""

    storageId: str
    recreated: list[CatalogEntry] = Field(
        default_factory=list, description="backup records made again from their manifests"
    )
    copiesAdded: list[CatalogEntry] = Field(
        default_factory=list, description="copies in this storage added to existing records"
    )
    skipped: list[CatalogEntry] = Field(
        default_factory=list, description="already in the catalog, or not verifiable now (why)"
    )
    corrupt: list[CatalogEntry] = Field(
        default_factory=list,
        description="objects whose size or SHA-256 does not match their manifest (left alone)",
    )
    complete: bool = Field(description="false: call again with startAfter = nextStartAfter")
    nextStartAfter: str | None = None
    usedBytes: int | None = Field(
        default=None,
        description="the storage's usage as recounted from the catalog (when complete)",
    )


class CatalogRebuildRequest(BaseModel):
    startAfter: str | None = Field(
        default=None,
        max_length=1024,
        description="the key the previous call stopped after (its nextStartAfter)",
    )

"""The DumpEngine of the use cases, on mariadb-dump and S3 (adapters/dump_pipeline.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from platform_backup.adapters.aws import client
from platform_backup.adapters.dump_pipeline import Progress, run_backup
from platform_backup.adapters.failover_upload import Destination
from platform_backup.adapters.mariadb import DbConnection, ServerInfo, inspect
from platform_backup.services.ports import DumpOutcome, DumpProgress, DumpTarget

_INSPECTION_FRESH_SECONDS = 60.0


class MariaDbDumpEngine:
    def __init__(self, connection: Callable[[], DbConnection], work_dir: str | None = None) -> None:
        # The secret is read per run, not cached: a rotated password takes effect at once.
        self._connection = connection
        self._work_dir = work_dir
        # The estimate's inspection, handed to the run that follows it (one inspection a run).
        self._inspected: tuple[tuple[str, ...], ServerInfo, float] | None = None

    def estimate_bytes(self, databases: list[str]) -> int:
        server = inspect(self._connection(), databases)
        self._inspected = (tuple(databases), server, time.monotonic())
        return server.size_bytes

    def _fresh_inspection(self, databases: list[str]) -> ServerInfo | None:
        inspected, self._inspected = self._inspected, None
        if inspected is None or inspected[0] != tuple(databases):
            return None
        return inspected[1] if time.monotonic() - inspected[2] < _INSPECTION_FRESH_SECONDS else None

    def run(
        self,
        *,
        backup_id: str,
        plan_id: str,
        databases: list[str],
        targets: list[DumpTarget],
        expected_bytes: int | None,
        progress: Callable[[DumpProgress], None],
        execution_id: str | None = None,
        trigger: str | None = None,
    ) -> DumpOutcome:
        by_key = {(t.bucket, t.key): t for t in targets}
        destinations = [
            Destination(
                bucket=t.bucket, key=t.key, client=client("s3", t.region), label=t.storage_id
            )
            for t in targets
        ]

        def forward(p: Progress) -> None:
            progress(
                DumpProgress(p.bytes_dumped, p.compressed_bytes, p.tables_done, p.tables_total)
            )

        result = run_backup(
            self._connection(),
            databases,
            destinations,
            backup_id=backup_id,
            plan_id=plan_id,
            progress=forward,
            expected_bytes=expected_bytes,
            work_dir=self._work_dir,
            server=self._fresh_inspection(databases),
            execution_id=execution_id,
            trigger=trigger,
        )
        target = by_key[(result.destination.bucket, result.destination.key)]
        return DumpOutcome(
            target=target,
            manifest_key=result.destination.manifest_key,
            raw_bytes=result.raw_bytes,
            compressed_bytes=result.compressed_bytes,
            sha256=result.sha256,
            compression=str(result.compression),
            databases=list(databases),
            failover_reason=result.failover_reason,
            binlog=result.manifest.get("binlog"),
        )

"""The restore function's use case: the workflow's steps (the backup source, the MariaDB
target, the archived binary log and its replay, and the executor's runner for the safety
backup)."""

from __future__ import annotations

import os

from platform_backup.adapters.apply_rates import DynamoApplyRates
from platform_backup.adapters.archive_repo import DynamoArchiveRepository
from platform_backup.adapters.backup_repo import DynamoBackupRepository
from platform_backup.adapters.binlog_replay import MariaDbBinlogReplayer
from platform_backup.adapters.dump_check import MariaDbDumpChecks
from platform_backup.adapters.lease import DynamoLeases
from platform_backup.adapters.mariadb import DbConnection
from platform_backup.adapters.mysql_restore import MariaDbTarget
from platform_backup.adapters.restore_repo import DynamoRestoreRepository
from platform_backup.adapters.restore_source import S3BackupSource
from platform_backup.adapters.secrets import read_db_secret
from platform_backup.adapters.segment_store import S3SegmentStore
from platform_backup.composition.common import clear_scratch, once, settings_of, utcnow
from platform_backup.composition.executor import runner
from platform_backup.services.restore_budget import RestoreBudget
from platform_backup.services.restore_records import RestoreRecords
from platform_backup.services.restore_replay import RestoreReplays
from platform_backup.services.restore_steps import RestoreSteps
from platform_backup.services.restore_verify import RestoreVerifier
from platform_backup.settings import RestoreSettings


def clear_tmp() -> None:
    """At cold start and before each job: what a killed run of this function left in /tmp."""
    clear_scratch("restore")


settings = settings_of(RestoreSettings)


@once
def restore_steps() -> RestoreSteps:
    current = settings()

    # The restore user, not the dump user: what a restore writes needs rights a backup must not
    # hold (docs/decisions.md); another server's secret (targetSecretArn) is that server's.
    own = current.restore_db_secret_arn or current.db_secret_arn

    def connect(secret_arn: str | None) -> DbConnection:
        return read_db_secret(secret_arn or own, current.region)

    restores, backups = DynamoRestoreRepository(), DynamoBackupRepository()
    source = S3BackupSource(current.region)
    target = MariaDbTarget(int(current.restore_defer_keys_from))
    return RestoreSteps(
        restores=restores,
        records=RestoreRecords(restores, backups, DynamoLeases(), utcnow),
        backups=backups,
        source=source,
        target=target,
        verifier=RestoreVerifier(source, target),
        safety=runner(),
        connect=connect,
        clock=utcnow,
        replays=RestoreReplays(
            DynamoArchiveRepository(),
            S3SegmentStore(current.region),
            MariaDbBinlogReplayer(),
            utcnow,
        ),
        statements=MariaDbDumpChecks(),
        budget=RestoreBudget(
            DynamoApplyRates(), current.restore_apply_rate, current.restore_step_seconds
        ),
        # What the function's CPUs can feed (two above 3538 MB), at most 4 connections.
        parallelism=min(os.cpu_count() or 1, 4),
    )

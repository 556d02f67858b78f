"""The restore workflow's steps (Validate, SafetyBackup, Restore, Replay, Verify, Finalize;
Rollback on any failure, Abandon when Rollback fails), each a call of ``run_step`` from
functions/restore.

What makes it safe:
- the plan's lease, taken by the API before the restore exists, is kept (renewed by every step)
  until the end, so no backup and no other restore runs meanwhile;
- the object is checked against the manifest's SHA-256 before anything touches the target, and
  read again pinned to the version checked; so is every binary-log segment a point-in-time
  restore replays (services/restore_replay.py), and the target's settings it needs;
- in the same read, every statement of the dump is checked against what mariadb-dump writes for
  the recorded databases (domain/dump_rules.py): anything else fails Validate, nothing applied;
- ``targetTouched`` is written before the first statement reaches the target: Rollback knows
  whether there is anything to undo;
- the lease and the backup's read hold are released before the final status is written, and a
  final status never changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from platform_backup.domain.backup import Backup, BackupCopy
from platform_backup.domain.frame_index import FrameIndex
from platform_backup.domain.progress import PROGRESS_SECONDS, TIME_MARGIN_SECONDS, estimate
from platform_backup.domain.restore import Restore, RestoreProgress, copies_for
from platform_backup.errors import (
    ChecksumMismatch,
    ClientFailed,
    OutOfTime,
    RollbackFailed,
    SafetyBackupFailed,
    TargetExists,
    Unprocessable,
    UnsafeDump,
)
from platform_backup.observability import logger
from platform_backup.services.lease_keeper import LeaseKeeper
from platform_backup.services.ports import (
    BackupReads,
    BackupSource,
    Checked,
    Deadline,
    DumpCheck,
    DumpChecks,
    RestoreRepository,
    SafetyBackups,
    TargetServer,
)
from platform_backup.services.restore_apply import plan_apply
from platform_backup.services.restore_budget import RestoreBudget
from platform_backup.services.restore_records import RestoreRecords
from platform_backup.services.restore_replay import RestoreReplays, target_problem
from platform_backup.services.restore_tables import check_copy
from platform_backup.services.restore_verify import RestoreVerifier


class RestoreSteps:
    def __init__(
        self,
        restores: RestoreRepository,
        records: RestoreRecords,
        backups: BackupReads,
        source: BackupSource,
        target: TargetServer,
        verifier: RestoreVerifier,
        safety: SafetyBackups,
        connect: Callable[[str | None], Any],
        clock: Callable[[], datetime],
        replays: RestoreReplays,
        statements: DumpChecks,
        budget: RestoreBudget,
        parallelism: int = 1,
    ) -> None:
        # Connections a framed backup is applied on at once, unless the restore asks otherwise.
        self._parallelism = parallelism
        self._restores = restores
        self._records = records
        self._backups = backups
        self._source = source
        self._target = target
        self._verifier = verifier
        self._safety = safety
        self._connect = connect
        self._clock = clock
        self._replays = replays
        self._statements = statements
        self._budget = budget

    def run_step(
        self, step: str, restore_id: str, deadline: Deadline, error: Mapping[str, Any] | None
    ) -> Restore:
        restore = self._restores.get(restore_id)
        if restore.final:
            return restore
        if step == "rollback":
            return self._rollback(restore, _cause(error), deadline)
        if step == "abandon":
            return self._abandon(restore, _cause(error))
        steps: dict[str, Callable[[Restore, Deadline, LeaseKeeper], Restore]] = {
            "validate": self._validate,
            "safety-backup": self._safety_backup,
            "restore": self._apply,
            "replay": self._replay,
            "verify": self._verify,
            "finalize": self._finalize,
        }
        work = steps.get(step)
        if work is None:
            raise ValueError(f"unknown step {step!r}")
        try:
            with self._kept(restore) as keeper:
                return work(restore, deadline, keeper)
        except BaseException as exc:
            self._records.note(restore_id, exc)
            raise

    @contextmanager
    def _kept(self, restore: Restore) -> Iterator[LeaseKeeper]:
        """The lease and read holds renewed now (a step fails at once if they are lost), then
        on a thread while the step works."""
        self._records.renew(restore)
        keeper = LeaseKeeper(lambda: self._records.renew(restore), name=f"restore-{restore.id}")
        keeper.start()
        try:
            yield keeper
        finally:
            keeper.stop()
            # The next step (or Rollback) starts after the workflow's transition, its retries'
            # backoff and a cold start: the lease is held across that gap, not just 60 s.
            self._records.hand_over(restore)

    def _validate(self, restore: Restore, deadline: Deadline, keeper: LeaseKeeper) -> Restore:
        restore = self._records.save(restore, phase="validate")
        backup = self._backups.get(restore.backupId)
        problems: list[str] = []
        chosen: tuple[BackupCopy, Checked, DumpCheck] | None = None
        for copy in copies_for(backup, restore.source):
            # The statements are checked in the same read as the checksum (one pass); for
            # chosen tables, in the one read of their frames.
            statements = self._statements.start(backup.compression, list(restore.databases))
            problem, checked = (
                self._check_tables(copy, backup, restore.tables, statements)
                if restore.tables
                else self._check(copy, backup, statements)
            )
            keeper.check()
            if problem is None and checked is not None:
                chosen = (copy, checked, statements)
                break
            problems.append(problem or "")
        if chosen is None:
            raise ChecksumMismatch(
                "no copy of the backup can be restored: " + "; ".join(problems or ["none left"])
            )
        copy, checked, statements = chosen
        if refused := statements.refusal():
            raise UnsafeDump(
                f"the dump holds what a backup of {', '.join(restore.databases)} never does, "
                f"{refused}: nothing was applied"
            )
        too_long = self._budget.step_refusal(
            restore.planId, self._to_apply(copy, backup, restore.tables)
        )
        if too_long is not None:
            raise OutOfTime(
                f"backup {backup.id} cannot be restored within the restore function's time: "
                f"{too_long}. Nothing was touched; restore it by hand (README) or raise the "
                "function's timeout"
            )
        replay = self._replays.validate(restore, keeper)
        conn = self._connect(restore.targetSecretArn)
        largest = max((s.raw_bytes for s in self._replays.segments(restore)), default=0)
        settings = self._target.settings(conn)
        problem = target_problem(settings, restore, largest)
        if problem is not None:
            raise Unprocessable(problem)
        # In place onto another server takes no safety backup: it must not be the platform's.
        if (
            restore.in_place
            and restore.targetSecretArn
            and settings.server == self._target.settings(self._connect(None)).server
        ):
            raise Unprocessable(
                "targetSecretArn reaches the platform database's own server "
                f"({settings.server}): restore in place without targetSecretArn, so that "
                "its safety backup is taken"
            )
        self._target.check_rights(conn, list(restore.databases.values()))
        if not restore.in_place:
            existing = self._target.existing(conn, list(restore.databases.values()))
            if existing:
                raise TargetExists(
                    f"the target databases exist already: {', '.join(existing)}; choose "
                    "another databaseSuffix"
                )
        else:
            self._target.existing(conn, list(restore.databases.values()))
        warnings = [*restore.warnings, *(f"{p}: used the next copy" for p in problems)]
        return self._records.save(
            restore,
            sourceCopy=copy,
            sourceVersion=checked.version,
            warnings=warnings,
            replay=replay,
        )

    def _check_tables(
        self, copy: BackupCopy, backup: Backup, tables: list[str], statements: DumpCheck
    ) -> tuple[str | None, Checked | None]:
        """The copy's index holds ``tables`` and their frames (each checked against the index
        as it is read) hold only what mariadb-dump writes."""
        problem, checked = check_copy(self._source, copy, backup, tables)
        if problem is not None or checked is None:
            return problem, checked
        index = FrameIndex.from_manifest(self._source.manifest(copy))
        assert index is not None  # nosec B101  # narrows a type, not a check
        try:
            for chunk in self._source.frames(
                copy, checked.version, index.selection(tables), lambda _read: None
            ):
                statements.feed(chunk)
        except Unprocessable as exc:
            return f"{copy.role} copy s3://{copy.bucket}/{copy.key}: {exc.message}", None
        return None, checked

    def _to_apply(self, copy: BackupCopy, backup: Backup, tables: list[str] | None) -> int:
        """Bytes of SQL the Restore step applies: the chosen tables' frames, else the dump."""
        if not tables:
            return backup.rawBytes
        index = FrameIndex.from_manifest(self._source.manifest(copy))
        if index is None:
            return backup.rawBytes
        return sum(frame.raw_length for frame in index.selection(tables))

    def _check(
        self, copy: BackupCopy, backup: Backup, statements: DumpCheck
    ) -> tuple[str | None, Checked | None]:
        where = f"{copy.role} copy s3://{copy.bucket}/{copy.key}"
        try:
            manifest = self._source.manifest(copy)
            checked = self._source.checksum(copy, statements.feed)
        except Unprocessable as exc:
            return f"{where}: {exc.message}", None
        recorded = manifest.get("sha256")
        if recorded != backup.sha256:
            return f"{where}: its manifest's SHA-256 is not the backup's", None
        if checked.version in (None, "null"):
            # Unpinned, the object could be replaced between this check and the restore.
            return (
                f"{where}: its bucket keeps no object versions, so the restore cannot read the "
                "very bytes it checked: enable versioning on the bucket",
                None,
            )
        if checked.sha256 != recorded:
            return (
                f"{where}: SHA-256 {checked.sha256} ({checked.size} bytes) does not match the "
                f"manifest's {recorded} ({backup.compressedBytes} bytes): the object is "
                "corrupted or truncated",
                None,
            )
        return None, checked

    def _safety_backup(self, restore: Restore, deadline: Deadline, keeper: LeaseKeeper) -> Restore:
        if not restore.safetyBackup:
            return restore
        restore = self._records.save(restore, phase="safety-backup")
        backup = self._backups.get(restore.backupId)
        own = [copy.storageId for copy in backup.copies if copy.role == "local"]
        execution = self._safety.run_for_restore(restore.planId, restore.id, deadline, own)
        if execution.status not in ("succeeded", "partially-succeeded") or not execution.backupId:
            raise SafetyBackupFailed(
                f"the safety backup (execution {execution.id}) {execution.status}: "
                f"{execution.error or execution.reason}; nothing was restored"
            )
        self._records.hold(execution.backupId, restore)
        return self._records.save(restore, safetyBackupId=execution.backupId)

    def _apply(self, restore: Restore, deadline: Deadline, keeper: LeaseKeeper) -> Restore:
        restore = self._records.save(restore, phase="restore")
        backup = self._backups.get(restore.backupId)
        copy = restore.sourceCopy
        if copy is None:
            raise ChecksumMismatch("the restore has no validated copy to read")
        self._check_time(restore, backup, self._to_apply(copy, backup, restore.tables), deadline)
        conn = self._connect(restore.targetSecretArn)
        if restore.targetTouched and not restore.in_place:
            # A repeated attempt starts again from nothing (the databases are this restore's).
            self._target.drop(conn, list(restore.databases.values()))
        way = plan_apply(self._source, restore, backup)
        writer = _Progress(self._records, restore, way.total, deadline, keeper)

        def touched() -> None:
            self._replays.restore_began(restore)
            writer.touched()

        applied = way.apply(
            self._target,
            conn,
            width=restore.parallelism or self._parallelism,
            progress=writer.report,
            on_start=touched,
        )
        total, read = way.total, way.read
        completed = applied.completed
        elapsed = time.monotonic() - writer.started
        restore = self._records.save(
            writer.restore,
            clientExitCode=applied.exit_code,
            dumpCompleted=completed,
            progress=_progress(applied.raw_bytes, total, elapsed),
            bytesRead=read,
        )
        if applied.exit_code != 0:
            raise ClientFailed(
                f"the mariadb client failed (exit {applied.exit_code}) after "
                f"{applied.raw_bytes} of {total} bytes: {applied.stderr or 'no output'}"
            )
        if not completed:
            raise ClientFailed(
                applied.stderr or "the dump ended without mariadb-dump's completion line"
            )
        self._budget.learn(restore.planId, applied.raw_bytes, elapsed)
        logger.info("dump applied", restore_id=restore.id, seconds=round(elapsed, 1))
        return restore.model_copy(
            update={"progress": restore.progress.model_copy(update={"etaSeconds": 0.0})}
        )

    def _check_time(
        self, restore: Restore, backup: Backup, to_apply: int, deadline: Deadline
    ) -> None:
        """Before the first statement (and before a repeated attempt drops anything): the apply
        fits the time this step has left and, in place, the safety backup's apply fits the
        fresh step a rollback would get, so a rollback never fails for want of time."""
        too_long = self._budget.left_refusal(restore.planId, to_apply, deadline.remaining_seconds())
        if too_long is not None:
            raise OutOfTime(
                f"the restore of backup {backup.id} was not started: {too_long}. Nothing was "
                "touched"
            )
        if restore.in_place and restore.safetyBackupId:
            safety = self._backups.get(restore.safetyBackupId)
            too_long = self._budget.step_refusal(restore.planId, safety.rawBytes)
            if too_long is not None:
                raise OutOfTime(
                    f"the restore of backup {backup.id} was not started: a rollback to the "
                    f"safety backup {safety.id} could not finish in time ({too_long}). The live "
                    "databases were not touched"
                )

    def _replay(self, restore: Restore, deadline: Deadline, keeper: LeaseKeeper) -> Restore:
        """The binary log from the backup's position up to the instant (point in time only)."""
        plan = restore.replay
        if plan is None or plan.applied:
            return restore
        total = plan.bytesTotal
        restore = self._records.save(
            restore, phase="replay", progress=RestoreProgress(bytesTotal=total)
        )
        writer = _Progress(self._records, restore, total, deadline, keeper)
        replayed = self._replays.replay(
            restore, self._connect(restore.targetSecretArn), writer.report
        )
        elapsed = time.monotonic() - writer.started
        done = writer.restore
        logger.info("binary log replayed", restore_id=done.id, seconds=round(elapsed, 1))
        return self._records.save(
            done,
            replay=plan.model_copy(update={"applied": True}),
            progress=_progress(replayed.raw_bytes, total, elapsed).model_copy(
                update={"etaSeconds": 0.0}
            ),
        )

    def _verify(self, restore: Restore, deadline: Deadline, keeper: LeaseKeeper) -> Restore:
        restore = self._records.save(restore, phase="verify")
        verified = self._verifier.verify(
            restore, lambda: self._connect(restore.targetSecretArn), keeper
        )
        return self._records.save(
            restore, rowCounts=verified.row_counts, warnings=verified.warnings
        )

    def _finalize(self, restore: Restore, deadline: Deadline, keeper: LeaseKeeper) -> Restore:
        restore = self._records.save(restore, phase="finalize")
        keeper.stop()
        self._records.release(restore)
        return self._records.final(restore, status="succeeded", error=None)

    # -- failure ----------------------------------------------------------------------------

    def _rollback(self, restore: Restore, cause: str | None, deadline: Deadline) -> Restore:
        error = restore.error or cause or "the restore failed"
        if not restore.targetTouched:
            self._records.release(restore)
            return self._records.final(restore, status="failed", error=error)
        restore = self._records.save(restore, phase="rollback", error=error)
        self._records.keep_for_rollback(restore)
        keeper = LeaseKeeper(lambda: self._records.renew(restore), name=f"rollback-{restore.id}")
        keeper.start()
        try:
            conn = self._connect(restore.targetSecretArn)
            names = list(restore.databases.values())
            if not restore.in_place:
                self._target.drop(conn, names)
            elif restore.safetyBackupId is None:
                keeper.stop()
                self._records.release(restore)
                return self._records.final(
                    restore,
                    status="failed",
                    error=f"{error}. ROLLBACK IMPOSSIBLE: the live databases {', '.join(names)} "
                    "were partly overwritten and no safety backup was taken: restore this backup "
                    "(or the newest good one) in place again now",
                )
            else:
                self._restore_safety(restore, deadline)
        except BaseException:
            keeper.stop()
            self._records.hand_over(restore)
            raise
        finally:
            keeper.stop()
        self._records.release(restore)
        return self._records.final(restore, status="rolled-back", error=error)

    def _restore_safety(self, restore: Restore, deadline: Deadline) -> None:
        safety = self._backups.get(restore.safetyBackupId or "")
        copy = next(iter(copies_for(safety, "auto")), None)
        if copy is None:
            raise RollbackFailed(f"the safety backup {safety.id} has no copy left")
        too_long = self._budget.left_refusal(
            restore.planId, safety.rawBytes, deadline.remaining_seconds()
        )
        if too_long is not None:
            # Not started, so nothing is half-applied: the workflow's retry gives it a fresh step.
            raise OutOfTime(
                f"the rollback to the safety backup {safety.id} was not started: {too_long}"
            )
        writer = _Progress(self._records, restore, safety.rawBytes, deadline, None)
        applied = self._target.apply(
            self._connect(restore.targetSecretArn),
            self._source.stream(copy, None, safety.sha256),
            compression=safety.compression,
            names={name: name for name in safety.databases},
            existing="replace",
            progress=writer.report,
            on_start=lambda: None,
        )
        if applied.exit_code != 0 or not applied.completed:
            raise RollbackFailed(
                f"the safety backup {safety.id} could not be applied (exit {applied.exit_code}):"
                f" {applied.stderr or 'the dump ended early'}"
            )

    def _abandon(self, restore: Restore, cause: str | None) -> Restore:
        """Rollback itself failed: the restore ends failed, saying loudly what to do."""
        names = ", ".join(restore.databases.values())
        if restore.in_place and restore.safetyBackupId:
            todo = (
                f"restore the safety backup {restore.safetyBackupId} in place now (POST "
                f"/v1/backups/{restore.safetyBackupId}/in-place-restores)"
            )
        elif restore.in_place:
            todo = "restore this backup (or the newest good one) in place again now"
        else:
            todo = f"drop the databases {names} by hand"
        self._records.release(restore)
        return self._records.final(
            restore,
            status="failed",
            error=f"{restore.error or 'the restore failed'}. ROLLBACK FAILED "
            f"({cause or 'no reason given'}): the databases {names} may be half restored; {todo}",
        )


class _Progress:
    """Turns bytes applied into restore updates every PROGRESS_SECONDS, and stops the apply
    (by raising) when the lease is lost or the function's time runs out."""

    def __init__(
        self,
        records: RestoreRecords,
        restore: Restore,
        total: int,
        deadline: Deadline,
        keeper: LeaseKeeper | None,
    ) -> None:
        self._records = records
        self.restore = restore
        self._total = total
        self._deadline = deadline
        self._keeper = keeper
        self.started = time.monotonic()
        self._last = 0.0

    def touched(self) -> None:
        self.restore = self._records.save(self.restore, targetTouched=True)

    def report(self, applied: int) -> None:
        if self._keeper is not None:
            self._keeper.check()
        elapsed = time.monotonic() - self.started
        if self._deadline.remaining_seconds() < TIME_MARGIN_SECONDS:
            rate = applied / elapsed if elapsed > 0 else 0.0
            needed = f"about {self._total / rate:.0f} s" if rate else "longer"
            raise OutOfTime(
                f"the function's time ran out after {applied} of {self._total} bytes applied "
                f"in {elapsed:.0f} s ({rate:.0f} bytes/s): this backup needs {needed} to "
                "restore; raise the restore function's timeout or restore by hand (README)"
            )
        now = time.monotonic()
        if now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        self.restore = self._records.save(
            self.restore, progress=_progress(applied, self._total, elapsed)
        )


def _progress(applied: int, total: int, elapsed: float) -> RestoreProgress:
    done = estimate(applied, total, elapsed)
    return RestoreProgress(
        bytesApplied=applied, bytesTotal=total, percent=done.percent, etaSeconds=done.eta_seconds
    )


def _cause(error: Mapping[str, Any] | None) -> str | None:
    """The Step Functions error a Catch passed on: the step's own message where it has one."""
    if not error:
        return None
    cause = str(error.get("Cause") or "")
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            return f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    except ValueError:
        pass
    return f"{error.get('Error', 'Error')}: {cause}" if cause else str(error.get("Error"))

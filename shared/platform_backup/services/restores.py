"""Restoring a backup: started by the API under the plan's lease, then worked through by the
restore workflow's steps (Validate, SafetyBackup, Restore, Verify, Finalize; Rollback on any
failure), each a call of ``run_step`` from functions/restore.

What makes it safe:
- the plan's lease is taken before the restore exists and kept (renewed by every step) until
  the end, so no backup and no other restore runs meanwhile;
- the object is checked against the manifest's SHA-256 before anything touches the target, and
  read again pinned to the version checked;
- ``targetTouched`` is written before the first statement reaches the target: Rollback knows
  whether there is anything to undo;
- the lease and the backup's read hold are released before the final status is written, and a
  final status never changes.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from platform_backup.domain.execution import Backup, BackupCopy, Execution
from platform_backup.domain.lease import LeaseLost
from platform_backup.domain.plan import Plan
from platform_backup.domain.restore import (
    PlanRestoreRequest,
    Restore,
    RestoreProgress,
    RestoreRequest,
    check_confirmation,
    target_names,
    wants_safety_backup,
)
from platform_backup.errors import Conflict, DomainError, Unprocessable
from platform_backup.observability import logger
from platform_backup.services.backups import (
    HEARTBEAT_SECONDS,
    LEASE_TTL_SECONDS,
    PROGRESS_SECONDS,
    TIME_MARGIN_SECONDS,
    Deadline,
    OutOfTime,
)
from platform_backup.services.ports import Leases, Page
from platform_backup.services.repositories import BackupBatch

# A restore step runs at most the function's 15 minutes; the hold outlives one step with room.
READ_HOLD = timedelta(minutes=20)
STEPS = ("validate", "safety-backup", "restore", "verify", "finalize", "rollback", "abandon")


# -- what the steps need from outside ------------------------------------------------------


class ChecksumMismatch(Unprocessable):
    """The object is not the dump the backup recorded (corrupted or truncated)."""

    code = "ChecksumMismatch"


class TargetExists(Unprocessable):
    code = "TargetExists"


class SafetyBackupFailed(DomainError):
    code = "SafetyBackupFailed"


class ClientFailed(DomainError):
    """The mariadb client stopped before the whole dump was applied."""

    code = "ClientFailed"


class VerifyFailed(DomainError):
    code = "VerifyFailed"


class RollbackFailed(DomainError):
    code = "RollbackFailed"


@dataclass(frozen=True)
class Checked:
    sha256: str
    size: int
    version: str | None


@dataclass(frozen=True)
class Applied:
    raw_bytes: int
    exit_code: int
    completed: bool
    stderr: str


@dataclass(frozen=True)
class TargetObjects:
    """What a set of databases holds, by kind, as ``database.name``."""

    tables: set[str]
    views: set[str]
    routines: set[str]
    triggers: set[str]
    events: set[str]
    # Definitions of views, routines, triggers and events, keyed "<kind> <database.name>".
    definitions: dict[str, str] = field(default_factory=dict)


class RestoreRepository(Protocol):
    def create(self, restore: Restore) -> None: ...
    def update(self, restore: Restore) -> None: ...
    def get(self, restore_id: str) -> Restore: ...
    def find(self, restore_id: str) -> Restore | None: ...
    def page(self, limit: int, token: str | None) -> Page[Restore]: ...


class BackupReads(Protocol):
    def get(self, backup_id: str) -> Backup: ...
    def read_range(
        self, plan_id: str, lower: datetime | None, upper: datetime | None
    ) -> BackupBatch: ...
    def hold_for_read(self, backup_id: str, reader: str, until: datetime) -> Backup: ...
    def release_read(self, backup_id: str, reader: str) -> None: ...


class PlanLookup(Protocol):
    def get(self, plan_id: str) -> Plan: ...
    def find(self, plan_id: str) -> Plan | None: ...


class Workflow(Protocol):
    def start(self, restore_id: str) -> None: ...


class BackupSource(Protocol):
    def manifest(self, copy: BackupCopy) -> dict[str, Any]: ...
    def checksum(self, copy: BackupCopy) -> Checked: ...
    def stream(self, copy: BackupCopy, version: str | None, sha256: str) -> Iterator[bytes]: ...


class TargetServer(Protocol):
    """The server restored into, reached through a connection the service never looks into."""

    def existing(self, conn: Any, databases: Sequence[str]) -> list[str]: ...
    def objects(self, conn: Any, databases: Sequence[str]) -> TargetObjects: ...
    def row_counts(self, conn: Any, tables: Sequence[str]) -> dict[str, int]: ...
    def drop(self, conn: Any, databases: Sequence[str]) -> None: ...
    def apply(
        self,
        conn: Any,
        chunks: Iterable[bytes],
        *,
        compression: str,
        names: Mapping[str, str],
        replace_existing: bool,
        progress: Callable[[int], None],
        on_start: Callable[[], None],
    ) -> Applied: ...


class SafetyBackups(Protocol):
    def run_for_restore(self, plan_id: str, restore_id: str, deadline: Deadline) -> Execution: ...


def copies_for(backup: Backup, source: str) -> list[BackupCopy]:
    """The copies a restore may read, in the order it tries them."""
    local, remote = backup.local_copy(), backup.remote_copy()
    wanted = {"local": [local], "remote": [remote], "auto": [local, remote]}[source]
    return [copy for copy in wanted if copy is not None]


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


class _Keeper:
    """Keeps the lease (and the backup's read hold) while a step works, on a thread; a lost
    lease is raised in the step's thread at its next progress report."""

    def __init__(self, service: RestoreService, restore: Restore) -> None:
        self._service = service
        self._restore = restore
        self._stop = threading.Event()
        self.lost: LeaseLost | None = None
        self._thread = threading.Thread(target=self._beat, name=f"restore-{restore.id}")

    def start(self) -> None:
        self._service.renew(self._restore)
        self._thread.daemon = True
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._service.renew(self._restore)
            except LeaseLost as exc:
                self.lost = exc
                return
            except Exception:  # a passing DynamoDB error: the next beat tries again
                logger.exception("restore heartbeat failed; retrying at the next beat")

    def check(self) -> None:
        if self.lost is not None:
            raise self.lost

    def stop(self) -> None:
        self._stop.set()


class _Progress:
    """Turns bytes applied into restore updates every PROGRESS_SECONDS, and stops the apply
    (by raising) when the lease is lost or the function's time runs out."""

    def __init__(
        self,
        service: RestoreService,
        restore: Restore,
        total: int,
        deadline: Deadline,
        keeper: _Keeper | None,
    ) -> None:
        self._service = service
        self.restore = restore
        self._total = total
        self._deadline = deadline
        self._keeper = keeper
        self.started = time.monotonic()
        self._last = 0.0

    def touched(self) -> None:
        self.restore = self._service.save(self.restore, targetTouched=True)

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
        self.restore = self._service.save(
            self.restore, progress=_progress(applied, self._total, elapsed)
        )


def _progress(applied: int, total: int, elapsed: float) -> RestoreProgress:
    fraction = min(applied / total, 1.0) if total else 0.0
    eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
    return RestoreProgress(
        bytesApplied=applied,
        bytesTotal=total,
        percent=round(fraction * 100, 1),
        etaSeconds=round(eta, 1) if eta is not None else None,
    )


class RestoreService:
    def __init__(
        self,
        restores: RestoreRepository,
        backups: BackupReads,
        plans: PlanLookup,
        leases: Leases,
        workflow: Workflow,
        source: BackupSource,
        target: TargetServer,
        safety: SafetyBackups,
        connect: Callable[[str | None], Any],
        clock: Callable[[], datetime],
    ) -> None:
        self._restores = restores
        self._backups = backups
        self._plans = plans
        self._leases = leases
        self._workflow = workflow
        self._source = source
        self._target = target
        self._safety = safety
        self._connect = connect
        self._clock = clock

    # -- the API's side ---------------------------------------------------------------------

    def get(self, restore_id: str) -> Restore:
        return self._restores.get(restore_id)

    def page(self, limit: int, token: str | None) -> Page[Restore]:
        return self._restores.page(limit, token)

    def start_before(
        self, plan_id: str, request: PlanRestoreRequest, requested_by: str | None
    ) -> Restore:
        """Restores the plan's newest backup taken before ``request.before``."""
        self._plans.get(plan_id)
        before = request.before
        batch = self._backups.read_range(plan_id, None, before)
        for stored in batch.backups:
            if copies_for(stored.value, request.source):
                plain = RestoreRequest.model_validate(request.model_dump(exclude={"before"}))
                return self.start(stored.value.id, plain, requested_by)
        raise Unprocessable(
            f"plan '{plan_id}' has no backup with a {request.source} copy taken before "
            f"{before.isoformat()}"
        )

    def start(self, backup_id: str, request: RestoreRequest, requested_by: str | None) -> Restore:
        backup = self._backups.get(backup_id)
        plan = self._plans.find(backup.planId)
        check_confirmation(request, plan.name if plan else None)
        safety = wants_safety_backup(request)
        if not copies_for(backup, request.source):
            raise Unprocessable(f"backup '{backup_id}' has no available {request.source} copy")
        now = self._clock()
        names = target_names(backup.databases, request.target, now)
        target = request.target
        if target.mode == "new-database" and not target.databaseSuffix:
            first = next(iter(names.items()), None)
            suffix = first[1][len(first[0]) :] if first else None
            target = target.model_copy(update={"databaseSuffix": suffix})
        restore = Restore(
            id=uuid.uuid4().hex,
            backupId=backup.id,
            planId=backup.planId,
            target=target,
            source=request.source,
            safetyBackup=safety,
            targetSecretArn=request.targetSecretArn,
            databases=names,
            requestedBy=requested_by,
            progress=RestoreProgress(bytesTotal=backup.rawBytes),
            startedAt=now,
            updatedAt=now,
        )
        self._take_lease(restore)
        created = False
        try:
            self._backups.hold_for_read(backup.id, restore.id, now + READ_HOLD)
            self._restores.create(restore)
            created = True
            self._workflow.start(restore.id)
        except BaseException as exc:
            self._release(restore)
            if created:
                message = exc.message if isinstance(exc, DomainError) else str(exc)
                self._final(restore, status="failed", error=message)
            raise
        return restore

    def _take_lease(self, restore: Restore) -> None:
        taken, found = self._leases.acquire(
            restore.planId,
            restore.id,
            "restore",
            f"restore {restore.id} of backup {restore.backupId}",
            time.time(),
            LEASE_TTL_SECONDS,
        )
        if not taken:
            holder = f"{found.kind} {found.owner}" if found else "another job"
            reason = f" ({found.reason})" if found and found.reason else ""
            raise Conflict(f"the plan is busy: {holder} is running{reason}; try again after it")
        if found is not None and found.kind == "restore":
            self._abandoned(found.owner)

    def _abandoned(self, restore_id: str) -> None:
        """A restore whose workflow died without releasing the lease: marked failed."""
        stale = self._restores.find(restore_id)
        if stale is not None and not stale.final:
            self._final(
                stale,
                status="failed",
                error="the restore workflow stopped in the middle (its lease expired): check "
                f"the databases {', '.join(stale.databases.values())} by hand",
            )

    # -- the workflow's side ----------------------------------------------------------------

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
        steps: dict[str, Callable[[Restore, Deadline, _Keeper], Restore]] = {
            "validate": self._validate,
            "safety-backup": self._safety_backup,
            "restore": self._apply,
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
            self._note(restore_id, exc)
            raise

    @contextmanager
    def _kept(self, restore: Restore) -> Iterator[_Keeper]:
        keeper = _Keeper(self, restore)
        keeper.start()
        try:
            yield keeper
        finally:
            keeper.stop()

    def renew(self, restore: Restore) -> None:
        self._leases.renew(restore.planId, restore.id, time.time(), LEASE_TTL_SECONDS)
        until = self._clock() + READ_HOLD
        for backup_id in (restore.backupId, restore.safetyBackupId):
            if backup_id:
                self._backups.hold_for_read(backup_id, restore.id, until)

    def save(self, restore: Restore, **changes: Any) -> Restore:
        current = restore.model_copy(update={**changes, "updatedAt": self._clock()})
        self._restores.update(current)
        return current

    def _note(self, restore_id: str, exc: BaseException) -> None:
        """The failure, on the record, for Rollback and for whoever watches."""
        message = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        current = self._restores.find(restore_id)
        if current is not None and not current.final and current.error is None:
            try:
                self.save(current, error=message)
            except DomainError:
                logger.exception("the restore's error could not be recorded")

    def _validate(self, restore: Restore, deadline: Deadline, keeper: _Keeper) -> Restore:
        restore = self.save(restore, phase="validate")
        backup = self._backups.get(restore.backupId)
        problems: list[str] = []
        chosen: tuple[BackupCopy, Checked] | None = None
        for copy in copies_for(backup, restore.source):
            problem, checked = self._check(copy, backup)
            keeper.check()
            if problem is None and checked is not None:
                chosen = (copy, checked)
                break
            problems.append(problem or "")
        if chosen is None:
            raise ChecksumMismatch(
                "no copy of the backup can be restored: " + "; ".join(problems or ["none left"])
            )
        copy, checked = chosen
        conn = self._connect(restore.targetSecretArn)
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
        return self.save(restore, sourceCopy=copy, sourceVersion=checked.version, warnings=warnings)

    def _check(self, copy: BackupCopy, backup: Backup) -> tuple[str | None, Checked | None]:
        where = f"{copy.role} copy s3://{copy.bucket}/{copy.key}"
        try:
            manifest = self._source.manifest(copy)
            checked = self._source.checksum(copy)
        except Unprocessable as exc:
            return f"{where}: {exc.message}", None
        recorded = manifest.get("sha256")
        if recorded != backup.sha256:
            return f"{where}: its manifest's SHA-256 is not the backup's", None
        if checked.sha256 != recorded:
            return (
                f"{where}: SHA-256 {checked.sha256} ({checked.size} bytes) does not match the "
                f"manifest's {recorded} ({backup.compressedBytes} bytes): the object is "
                "corrupted or truncated",
                None,
            )
        return None, checked

    def _safety_backup(self, restore: Restore, deadline: Deadline, keeper: _Keeper) -> Restore:
        if not restore.safetyBackup:
            return restore
        restore = self.save(restore, phase="safety-backup")
        execution = self._safety.run_for_restore(restore.planId, restore.id, deadline)
        if execution.status not in ("succeeded", "partially-succeeded") or not execution.backupId:
            raise SafetyBackupFailed(
                f"the safety backup (execution {execution.id}) {execution.status}: "
                f"{execution.error or execution.reason}; nothing was restored"
            )
        self._backups.hold_for_read(execution.backupId, restore.id, self._clock() + READ_HOLD)
        return self.save(restore, safetyBackupId=execution.backupId)

    def _apply(self, restore: Restore, deadline: Deadline, keeper: _Keeper) -> Restore:
        restore = self.save(restore, phase="restore")
        backup = self._backups.get(restore.backupId)
        copy = restore.sourceCopy
        if copy is None:
            raise ChecksumMismatch("the restore has no validated copy to read")
        conn = self._connect(restore.targetSecretArn)
        if restore.targetTouched and not restore.in_place:
            # A repeated attempt starts again from nothing (the databases are this restore's).
            self._target.drop(conn, list(restore.databases.values()))
        writer = _Progress(self, restore, backup.rawBytes, deadline, keeper)
        applied = self._target.apply(
            conn,
            self._source.stream(copy, restore.sourceVersion, backup.sha256),
            compression=backup.compression,
            names=restore.databases,
            replace_existing=restore.in_place,
            progress=writer.report,
            on_start=writer.touched,
        )
        elapsed = time.monotonic() - writer.started
        restore = self.save(
            writer.restore,
            clientExitCode=applied.exit_code,
            dumpCompleted=applied.completed,
            progress=_progress(applied.raw_bytes, backup.rawBytes, elapsed),
        )
        if applied.exit_code != 0:
            raise ClientFailed(
                f"the mariadb client failed (exit {applied.exit_code}) after "
                f"{applied.raw_bytes} of {backup.rawBytes} bytes: {applied.stderr or 'no output'}"
            )
        if not applied.completed:
            raise ClientFailed("the dump ended without mariadb-dump's completion line")
        logger.info("dump applied", restore_id=restore.id, seconds=round(elapsed, 1))
        return restore.model_copy(
            update={"progress": restore.progress.model_copy(update={"etaSeconds": 0.0})}
        )

    def _verify(self, restore: Restore, deadline: Deadline, keeper: _Keeper) -> Restore:
        restore = self.save(restore, phase="verify")
        if restore.clientExitCode != 0 or not restore.dumpCompleted:
            raise VerifyFailed("the client did not apply the whole dump")
        copy = restore.sourceCopy
        if copy is None:
            raise VerifyFailed("the restore has no validated copy")
        manifest = self._source.manifest(copy)
        expected, checked_kinds = expected_objects(manifest, restore.databases)
        conn = self._connect(restore.targetSecretArn)
        found = self._target.objects(conn, list(restore.databases.values()))
        present = {
            "table": found.tables,
            "view": found.views,
            "routine": found.routines,
            "trigger": found.triggers,
            "event": found.events,
        }
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
        return self.save(restore, rowCounts=counts, warnings=warnings)

    def _finalize(self, restore: Restore, deadline: Deadline, keeper: _Keeper) -> Restore:
        restore = self.save(restore, phase="finalize")
        keeper.stop()
        self._release(restore)
        return self._final(restore, status="succeeded", error=None)

    # -- failure ----------------------------------------------------------------------------

    def _rollback(self, restore: Restore, cause: str | None, deadline: Deadline) -> Restore:
        error = restore.error or cause or "the restore failed"
        if not restore.targetTouched:
            self._release(restore)
            return self._final(restore, status="failed", error=error)
        restore = self.save(restore, phase="rollback", error=error)
        self._keep_for_rollback(restore)
        conn = self._connect(restore.targetSecretArn)
        names = list(restore.databases.values())
        if not restore.in_place:
            self._target.drop(conn, names)
        elif restore.safetyBackupId is None:
            self._release(restore)
            return self._final(
                restore,
                status="failed",
                error=f"{error}. ROLLBACK IMPOSSIBLE: the live databases {', '.join(names)} were "
                "partly overwritten and no safety backup was taken: restore this backup (or "
                "the newest good one) in place again now",
            )
        else:
            self._restore_safety(restore, deadline)
        self._release(restore)
        return self._final(restore, status="rolled-back", error=error)

    def _keep_for_rollback(self, restore: Restore) -> None:
        try:
            self.renew(restore)
        except LeaseLost:
            taken, found = self._leases.acquire(
                restore.planId, restore.id, "restore", "rollback", time.time(), LEASE_TTL_SECONDS
            )
            if not taken:
                # Undoing a half-written target matters more than the job holding the plan.
                logger.warning("rolling back without the plan's lease", holder=str(found))

    def _restore_safety(self, restore: Restore, deadline: Deadline) -> None:
        safety = self._backups.get(restore.safetyBackupId or "")
        copy = next(iter(copies_for(safety, "auto")), None)
        if copy is None:
            raise RollbackFailed(f"the safety backup {safety.id} has no copy left")
        writer = _Progress(self, restore, safety.rawBytes, deadline, None)
        applied = self._target.apply(
            self._connect(restore.targetSecretArn),
            self._source.stream(copy, None, safety.sha256),
            compression=safety.compression,
            names={name: name for name in safety.databases},
            replace_existing=True,
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
                f"/v1/backups/{restore.safetyBackupId}/restores, mode in-place)"
            )
        elif restore.in_place:
            todo = "restore this backup (or the newest good one) in place again now"
        else:
            todo = f"drop the databases {names} by hand"
        self._release(restore)
        return self._final(
            restore,
            status="failed",
            error=f"{restore.error or 'the restore failed'}. ROLLBACK FAILED "
            f"({cause or 'no reason given'}): the databases {names} may be half restored; {todo}",
        )

    def _release(self, restore: Restore) -> None:
        for backup_id in (restore.backupId, restore.safetyBackupId):
            if backup_id:
                try:
                    self._backups.release_read(backup_id, restore.id)
                except DomainError:
                    logger.exception("read hold not released; it expires by itself")
        self._leases.release(restore.planId, restore.id)

    def _final(self, restore: Restore, **changes: Any) -> Restore:
        now = self._clock()
        final = restore.model_copy(update={**changes, "finishedAt": now, "updatedAt": now})
        self._restores.update(final)
        return final


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

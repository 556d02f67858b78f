"""Every port of the use cases: what they need from the outside world, as protocols and the plain
records that cross them. Adapters implement these; nothing here knows AWS or MariaDB.

The records are NamedTuples: immutable like frozen dataclasses, and about a seventh of their cost
to define, which every function pays at cold start for all of them (docs/decisions.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    # Named in annotations only: a function imports the domain models it uses, not all of them
    # through its ports (each pydantic model costs its build at cold start).
    from platform_backup.domain.backup import Backup, BackupCopy
    from platform_backup.domain.execution import Execution
    from platform_backup.domain.frame_index import Frame, Phase
    from platform_backup.domain.lease import Holder
    from platform_backup.domain.plan import Plan
    from platform_backup.domain.recovery import ArchiveState, HistoryBreak, Segment, SegmentCopy
    from platform_backup.domain.remote_lock import ObjectLock
    from platform_backup.domain.restore import Restore
    from platform_backup.domain.retention import RetentionCursor
    from platform_backup.domain.storage import Storage, StoragePatch

T = TypeVar("T")

# What a restore does with the target databases that already exist: "new" refuses them (the
# client fails on the dump's CREATE DATABASE), "replace" drops each before the dump makes it
# again (in place), "keep" keeps them and replaces only the tables the dump holds (chosen tables
# in place). Decided once, by the restore (services/restore_apply.py).
Existing = Literal["new", "replace", "keep"]


class Page(NamedTuple, Generic[T]):
    items: list[T]
    next_token: str | None


class Deadline(NamedTuple):
    """The time the function has left (Lambda's context), so a run can refuse up front."""

    remaining_seconds: Callable[[], float]


# -- records ------------------------------------------------------------------------------


class StorageRepository(Protocol):
    def create(self, storage: Storage) -> None: ...
    def get(self, storage_id: str) -> Storage: ...
    def find(self, storage_id: str) -> Storage | None: ...
    def page(self, limit: int, token: str | None) -> Page[Storage]: ...
    def all(self) -> list[Storage]: ...
    def update(self, storage_id: str, patch: StoragePatch) -> Storage: ...
    def delete(self, storage_id: str) -> None: ...
    def add_usage(self, storage_id: str, delta_bytes: int, delta_copies: int) -> None: ...


class PlanLookup(Protocol):
    def get(self, plan_id: str) -> Plan: ...
    def find(self, plan_id: str) -> Plan | None: ...


class PlanRepository(PlanLookup, Protocol):
    def create(self, plan: Plan) -> None: ...
    def page(self, limit: int, token: str | None) -> Page[Plan]: ...
    def all(self) -> list[Plan]: ...
    def replace(self, old: Plan, new: Plan) -> None: ...
    def delete(self, plan: Plan) -> None: ...


class ExecutionWriteRefused(Exception):
    """The execution exists already (create) or is final already (update)."""


class ExecutionRepository(Protocol):
    def create(self, execution: Execution) -> None: ...
    def update(self, execution: Execution) -> None: ...
    def get(self, execution_id: str) -> Execution: ...
    def find(self, execution_id: str) -> Execution | None: ...
    def page(
        self, plan_id: str | None, status: str | None, limit: int, token: str | None
    ) -> Page[Execution]: ...
    def last_success(self, plan_id: str) -> Execution | None: ...


class RunningExecutions(Protocol):
    def running_since(self, since: datetime) -> list[Execution]:
        """Every execution still ``running`` that started at or after ``since``."""


class BackupRepository(Protocol):
    def create(self, backup: Backup) -> None: ...
    def get(self, backup_id: str) -> Backup: ...
    def find(self, backup_id: str) -> Backup | None: ...
    def latest(self, plan_id: str) -> Backup | None: ...
    def page(self, plan_id: str | None, limit: int, token: str | None) -> Page[Backup]: ...


class Stored(NamedTuple, Generic[T]):
    """A record as read, with the version a conditional write of it compares against."""

    value: T
    version: object


class BackupBatch(NamedTuple):
    backups: list[Stored[Backup]]
    items_read: int


class UsageChange(NamedTuple):
    storage_id: str
    delta_bytes: int
    delta_copies: int


class PrunableBackups(Protocol):
    """What retention and deletes by hand need: reads by plan and time through the index, and
    writes that succeed only on the version read (None / False when another writer came first;
    otherwise the record as now stored)."""

    def read_range(
        self, plan_id: str, lower: datetime | None, upper: datetime | None
    ) -> BackupBatch: ...
    def read_ids(self, backup_ids: Sequence[str]) -> BackupBatch: ...
    def find_stored(self, backup_id: str) -> Stored[Backup] | None: ...
    def newest_with_copy(self, plan_id: str) -> Backup | None: ...
    def claim(
        self, current: Stored[Backup], claimed: Backup, usage: Sequence[UsageChange]
    ) -> Stored[Backup] | None: ...
    def replace(self, current: Stored[Backup], new: Backup) -> Stored[Backup] | None: ...
    def remove(self, current: Stored[Backup]) -> bool: ...
    def read_cursor(self, plan_id: str) -> Stored[RetentionCursor] | None: ...
    def write_cursor(
        self, plan_id: str, cursor: RetentionCursor, current: Stored[RetentionCursor] | None
    ) -> bool: ...


class BackupReads(Protocol):
    """What a restore reads of backups, and the hold that keeps retention off them meanwhile."""

    def get(self, backup_id: str) -> Backup: ...
    def read_range(
        self, plan_id: str, lower: datetime | None, upper: datetime | None
    ) -> BackupBatch: ...
    def hold_for_read(self, backup_id: str, reader: str, until: datetime) -> Backup: ...
    def release_read(self, backup_id: str, reader: str) -> None: ...


class RestoreRepository(Protocol):
    def create(self, restore: Restore) -> None: ...
    def update(self, restore: Restore) -> None: ...
    def get(self, restore_id: str) -> Restore: ...
    def find(self, restore_id: str) -> Restore | None: ...
    def page(self, limit: int, token: str | None) -> Page[Restore]: ...


class PendingRemote(Protocol):
    """The plan's backups still missing their remote copy."""

    def add(self, plan_id: str, backup_id: str) -> None: ...
    def done(self, plan_id: str, backup_id: str) -> None: ...
    def pending(self, plan_id: str) -> list[str]: ...


class ApplyRates(Protocol):
    """The apply rate (bytes of SQL per second) of the plan's last measurable restore."""

    def measured(self, plan_id: str) -> float | None: ...
    def record(self, plan_id: str, bytes_per_second: float) -> None: ...


class Leases(Protocol):
    def holder(self, plan_id: str) -> Holder | None: ...
    def acquire(
        self, plan_id: str, owner: str, kind: str, reason: str, now: float, ttl: float
    ) -> tuple[bool, Holder | None]: ...
    def renew(self, plan_id: str, owner: str, now: float, ttl: float) -> None: ...
    def release(self, plan_id: str, owner: str) -> None: ...


# -- storages and schedules ---------------------------------------------------------------


class BucketProbe(Protocol):
    def problem(self, bucket: str, region: str) -> str | None: ...


class BackupDeletes(Protocol):
    def delete_backup(self, backup_id: str, force: bool = False) -> None:
        """Deletes a backup and every copy of it under retention's rules (NotFound, Conflict)."""


class ScheduleSync(Protocol):
    def reconcile(self, plan_id: str) -> None:
        """Make the plan's schedules match the stored plan (or remove them if it is gone).
        Raises DependencyFailed when the scheduler could not be brought in line."""


class ScheduleSpec(NamedTuple):
    name: str
    group: str
    expression: str
    timezone: str
    start_date: datetime | None
    enabled: bool
    target_arn: str
    role_arn: str
    dead_letter_arn: str
    input: str
    description: str
    retry_attempts: int
    max_event_age_seconds: int


class SchedulerGateway(Protocol):
    def upsert(self, spec: ScheduleSpec) -> None: ...
    def delete(self, group: str, name: str) -> None: ...
    def names(self, group: str, prefix: str) -> list[str]: ...


# -- backups ------------------------------------------------------------------------------


class DumpTarget(NamedTuple):
    """Where a dump may go: a storage of the plan and the key the plan writes there."""

    storage_id: str
    bucket: str
    region: str
    key: str


class DumpProgress(NamedTuple):
    bytes_dumped: int
    compressed_bytes: int
    tables_done: int
    tables_total: int


class DumpOutcome(NamedTuple):
    target: DumpTarget
    manifest_key: str
    raw_bytes: int
    compressed_bytes: int
    sha256: str
    compression: str
    databases: list[str]
    failover_reason: str | None
    # Where in the binary log the snapshot was (file, position, gtid, observedAt), when logging.
    binlog: dict[str, Any] | None = None


class DumpEngine(Protocol):
    def estimate_bytes(self, databases: list[str]) -> int:
        """Raw dump size expected from the server's table sizes."""

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
        """Dumps once into the first target that takes it; raises a DomainError otherwise."""


class ObjectRef(NamedTuple):
    bucket: str
    region: str
    key: str


class Replicator(Protocol):
    def copy(
        self,
        source: ObjectRef,
        target: ObjectRef,
        size: int | None,
        sha256: str | None,
        lock: ObjectLock | None = None,
    ) -> datetime | None:
        """Server-side copy, verified against ``sha256`` when given; a failed or unverified copy
        leaves nothing at the target and raises a DomainError saying why. With ``lock``, on a
        bucket with Object Lock, the copy is locked so; returns the retain-until date the copy
        carries (None: not locked)."""

    def remove(self, target: ObjectRef) -> None:
        """Removes a copy made but not recorded (every version of it)."""

    def seconds_for(self, size: int) -> float:
        """How long copying and proving an object of ``size`` bytes (and its manifest) may take,
        at the declared rates of this way of copying: the sync's time check before each copy."""


class ObjectStore(Protocol):
    def delete_every_version(self, bucket: str, region: str, key: str) -> int: ...


class ListedObject(NamedTuple):
    key: str
    size: int
    modified: datetime


class StoredObjects(Protocol):
    """What a storage holds, read without the catalog (reconcile, catalog rebuild)."""

    def listing(
        self, bucket: str, region: str, prefix: str, start_after: str | None = None
    ) -> Iterator[ListedObject]:
        """The current objects under ``prefix``, in key order, after ``start_after``."""

    def read_json(self, bucket: str, region: str, key: str) -> dict[str, Any]:
        """A small JSON object (a manifest); ValueError naming what is wrong with it."""

    def sha256(self, bucket: str, region: str, key: str, deadline: Deadline) -> Checked | None:
        """The object's SHA-256 and size, streamed; None if ``deadline`` came first."""


class CatalogRecords(Protocol):
    """The backup records as the catalog rebuild reads and writes them."""

    def find_stored(self, backup_id: str) -> Stored[Backup] | None: ...
    def create(self, backup: Backup) -> None: ...
    def replace(self, current: Stored[Backup], new: Backup) -> Stored[Backup] | None: ...
    def every(self) -> Iterator[Backup]: ...


class StorageUsage(Protocol):
    def set_usage(self, storage_id: str, used_bytes: int, copies: int) -> None:
        """The storage's usage counters, as recounted from the catalog."""


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, object]) -> None: ...


class RetentionTrigger(Protocol):
    def start(self, plan_id: str) -> None:
        """Starts retention for the plan asynchronously; DependencyFailed when refused."""


class Launcher(Protocol):
    def start_backup(self, payload: dict[str, object]) -> None:
        """Starts the executor asynchronously with this event."""


class RunMetrics(Protocol):
    """The figures of a backup run the alarms and dashboards read."""

    def outcome(self, status: str) -> None:
        """One run ended with this final status."""

    def dump(self, raw_bytes: int, compressed_bytes: int, seconds: float) -> None:
        """The dump's sizes and time, as the backup records them."""


class SafetyBackups(Protocol):
    def run_for_restore(
        self, plan_id: str, restore_id: str, deadline: Deadline, orphan_storage_ids: list[str]
    ) -> Execution:
        """A backup of the live databases before an in-place restore; when the plan is gone,
        into ``orphan_storage_ids`` (the restored backup's local storages)."""
        ...


# -- restores -----------------------------------------------------------------------------


class Workflow(Protocol):
    def start(self, restore_id: str) -> None: ...


class Checked(NamedTuple):
    sha256: str
    size: int
    version: str | None


class Stat(NamedTuple):
    size: int
    version: str | None


class BackupSource(Protocol):
    def manifest(self, copy: BackupCopy) -> dict[str, Any]: ...
    def checksum(
        self, copy: BackupCopy, observe: Callable[[bytes], None] | None = None
    ) -> Checked: ...
    def stream(self, copy: BackupCopy, version: str | None, sha256: str) -> Iterator[bytes]: ...
    def stat(self, copy: BackupCopy) -> Stat:
        """The object's size and version, without reading it."""
        ...

    def frames(
        self,
        copy: BackupCopy,
        version: str | None,
        frames: Sequence[Frame],
        on_read: Callable[[int], None],
        sql: bool = False,
    ) -> Iterator[bytes]:
        """Only ``frames`` of the object (ranged reads), each yielded once it is checked
        against the index (its length, its SQL's length, zstd's checksum), as it is stored or,
        with ``sql``, as the SQL the check decompressed; ``on_read`` gets the bytes read from
        storage so far. Raises ChecksumMismatch for a frame that does not."""
        ...


class DumpCheck(Protocol):
    """One pass over a dump's compressed bytes, checking its statements as they stream."""

    def feed(self, compressed: bytes) -> None: ...
    def refusal(self) -> str | None: ...


class DumpChecks(Protocol):
    """What a restore may apply: the statements mariadb-dump writes for ``databases``."""

    def start(self, compression: str, databases: Sequence[str]) -> DumpCheck: ...


class Applied(NamedTuple):
    raw_bytes: int
    exit_code: int
    completed: bool
    stderr: str


class Replayed(NamedTuple):
    raw_bytes: int  # binary-log bytes read
    exit_code: int
    stderr: str


class TargetSettings(NamedTuple):
    """What a target server must allow for a restore (and a replay) to load."""

    log_bin: bool
    trusts_function_creators: bool
    has_super: bool
    max_allowed_packet: int
    server: str = ""  # which server answers: host name, port and data directory


class TargetObjects(NamedTuple):
    """What a set of databases holds, by kind, as ``database.name``."""

    tables: set[str]
    views: set[str]
    routines: set[str]
    triggers: set[str]
    events: set[str]
    # Definitions of views, routines, triggers and events, keyed "<kind> <database.name>".
    definitions: dict[str, str]


class TargetServer(Protocol):
    """The server restored into, reached through a connection the service never looks into."""

    def existing(self, conn: Any, databases: Sequence[str]) -> list[str]: ...
    def objects(self, conn: Any, databases: Sequence[str]) -> TargetObjects: ...
    def row_counts(self, conn: Any, tables: Sequence[str]) -> dict[str, int]: ...
    def check_rights(self, conn: Any, databases: Sequence[str]) -> None:
        """Raises naming every right the user lacks to (re)create ``databases``."""

    def drop(self, conn: Any, databases: Sequence[str]) -> None: ...
    def settings(self, conn: Any) -> TargetSettings: ...
    def apply(
        self,
        conn: Any,
        chunks: Iterable[bytes],
        *,
        compression: str,
        names: Mapping[str, str],
        existing: Existing,
        progress: Callable[[int], None],
        on_start: Callable[[], None],
    ) -> Applied: ...
    def apply_frames(
        self,
        conn: Any,
        header: Sequence[Frame],
        phases: Sequence[Phase],
        read: Callable[[Sequence[Frame]], Iterator[bytes]],
        *,
        names: Mapping[str, str],
        existing: Existing,
        width: int,
        progress: Callable[[int], None],
        on_start: Callable[[], None],
    ) -> Applied:
        """A framed backup, phase by phase, each parallel phase on ``width``
        connections (adapters/parallel_restore.py); ``read`` gives frames' checked bytes."""
        ...


# -- point-in-time recovery -----------------------------------------------------------------


class SegmentStore(Protocol):
    """Archived segments in storage."""

    def checksum(self, copy: SegmentCopy) -> Checked: ...
    def stream(self, copy: SegmentCopy, sha256: str) -> Iterator[bytes]:
        """The stored bytes; raises ChecksumMismatch at the end when they are not ``sha256``."""


class BinlogReplayer(Protocol):
    def replay(
        self,
        conn: Any,
        segments: Sequence[Callable[[], Iterable[bytes]]],
        *,
        start_position: int,
        stop_before: datetime,
        names: Mapping[str, str],
        progress: Callable[[int], None],
        on_start: Callable[[], None],
    ) -> Replayed:
        """Replays the segments' events (from ``start_position`` in the first, before
        ``stop_before``) of the databases in ``names`` into them, in one client session."""


class ArchiveRepository(Protocol):
    """The plan's archive: its state, segments, history breaks and run guards. State writes are
    conditional on the state read (None when another writer came first)."""

    def state(self, plan_id: str) -> ArchiveState: ...
    def save_state(self, previous: ArchiveState, state: ArchiveState) -> ArchiveState | None: ...
    def add_segment(
        self, previous: ArchiveState, segment: Segment, state: ArchiveState
    ) -> ArchiveState | None: ...
    def replace_segment(self, segment: Segment) -> None: ...
    def segments(self, plan_id: str) -> list[Segment]: ...
    def remove_segment(self, plan_id: str, sequence: int) -> bool: ...
    def add_break(self, brk: HistoryBreak) -> None: ...
    def breaks(self, plan_id: str) -> list[HistoryBreak]: ...
    def remove_break(self, brk: HistoryBreak) -> None: ...
    def claim_run(self, plan_id: str, scheduled: str, now: float) -> bool: ...
    def forget(self, plan_id: str) -> None: ...


class BinlogFile(NamedTuple):
    name: str
    size: int


class BinlogServerStatus(NamedTuple):
    """What the server says of its binary log (SHOW BINARY LOGS and the variables)."""

    log_bin: bool
    binlog_format: str
    server_id: int
    files: tuple[BinlogFile, ...]  # oldest first; the last is the one being written
    expire_seconds: int  # how long the server keeps binary logs; 0 = until purged by hand


class BinlogSource(Protocol):
    """The protected server's binary log, read over the replication protocol (never its disk)."""

    def status(self) -> BinlogServerStatus: ...

    def rotate(self) -> datetime:
        """Closes the file being written (FLUSH BINARY LOGS); the server's time just before,
        by which every committed transaction is in a closed file."""

    def fetch(self, file: str) -> Iterator[bytes]:
        """The raw bytes of one closed file, as the server has them."""


class BinlogSummary(NamedTuple):
    """What a binary-log file's events say of it (adapters/binlog_events.py reads them)."""

    bytes: int
    first_event_at: datetime | None
    last_event_at: datetime | None
    first_gtid: str | None
    last_gtid: str | None
    server_ids: frozenset[int]


class BinlogScan(Protocol):
    """Reads a file's events as its bytes stream past."""

    def feed(self, chunk: bytes) -> None: ...

    def summary(self) -> BinlogSummary:
        """Raises a DomainError when the bytes were no whole binary-log file."""


class SegmentWritten(NamedTuple):
    raw_bytes: int
    compressed_bytes: int
    sha256: str  # of the stored (compressed) object


class SegmentWriteRefused(Exception):
    """The storage refused the segment (its reason says how); nothing was left there."""


class SegmentWriter(Protocol):
    def write(self, target: ObjectRef, chunks: Iterable[bytes]) -> SegmentWritten:
        """Stores ``chunks`` compressed at ``target``. Raises SegmentWriteRefused when the storage
        refuses (after removing anything partial); an error of ``chunks`` itself propagates."""


class ArchiveMetrics(Protocol):
    """The archive's figures the alarms read, per plan."""

    def history_break(self, plan_id: str, kind: str) -> None: ...
    def lag(self, plan_id: str, seconds: float, interval_seconds: float) -> None: ...
    def failed(self, plan_id: str) -> None: ...
    def segment(self, plan_id: str, raw_bytes: int, compressed_bytes: int) -> None: ...


class ServerProblem(NamedTuple):
    """A server setting that keeps the binary log from being archived and replayed safely."""

    setting: str  # "log_bin", "binlog_format", "binlog_expire_logs_seconds", ...
    message: str


class BinlogServerCheck(Protocol):
    """Asks the protected server, before point-in-time recovery is turned on, whether its binary
    log can be archived at this interval."""

    def problems(self, archive_interval_minutes: int) -> list[ServerProblem]:
        """What would have to change on the server (empty: nothing). Raises DependencyFailed
        when the check could not be made."""


class BackupHistory(Protocol):
    """A plan's backups by creation time (the byPlan index)."""

    def read_range(
        self, plan_id: str, lower: datetime | None, upper: datetime | None
    ) -> BackupBatch: ...

"""What the use cases need from the outside world, as protocols; adapters implement them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from platform_backup.domain.lease import Holder

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


class BucketProbe(Protocol):
    def problem(self, bucket: str, region: str) -> str | None: ...


class ScheduleSync(Protocol):
    def reconcile(self, plan_id: str) -> None:
        """Make the plan's schedules match the stored plan (or remove them if it is gone).
        Raises DependencyFailed when the scheduler could not be brought in line."""


@dataclass(frozen=True)
class DumpTarget:
    """Where a dump may go: a storage of the plan and the key the plan writes there."""

    storage_id: str
    bucket: str
    region: str
    key: str


@dataclass(frozen=True)
class DumpProgress:
    bytes_dumped: int
    compressed_bytes: int
    tables_done: int
    tables_total: int


@dataclass(frozen=True)
class DumpOutcome:
    target: DumpTarget
    manifest_key: str
    raw_bytes: int
    compressed_bytes: int
    sha256: str
    compression: str
    databases: list[str]
    failover_reason: str | None


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
    ) -> DumpOutcome:
        """Dumps once into the first target that takes it; raises a DomainError otherwise."""


class Leases(Protocol):
    def holder(self, plan_id: str) -> Holder | None: ...
    def acquire(
        self, plan_id: str, owner: str, kind: str, reason: str, now: float, ttl: float
    ) -> tuple[bool, Holder | None]: ...
    def renew(self, plan_id: str, owner: str, now: float, ttl: float) -> None: ...
    def release(self, plan_id: str, owner: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, object]) -> None: ...


class Launcher(Protocol):
    def start_backup(self, payload: dict[str, object]) -> None:
        """Starts the executor asynchronously with this event."""


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    region: str
    key: str


class Replicator(Protocol):
    def copy(
        self, source: ObjectRef, target: ObjectRef, size: int | None, sha256: str | None
    ) -> None:
        """Server-side copy, verified against ``sha256`` when given; a failed or unverified copy
        leaves nothing at the target and raises a DomainError saying why."""

    def remove(self, target: ObjectRef) -> None:
        """Removes a copy made but not recorded (every version of it)."""


class PendingRemote(Protocol):
    """The plan's backups still missing their remote copy."""

    def add(self, plan_id: str, backup_id: str) -> None: ...
    def done(self, plan_id: str, backup_id: str) -> None: ...
    def pending(self, plan_id: str) -> list[str]: ...

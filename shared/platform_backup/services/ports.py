"""What the use cases need from the outside world, as protocols; adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

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

"""The checks the monitor runs every few minutes.

Staleness: each plan's ratio of time since its last successful backup to its cycle
(domain/staleness.py), and the one figure the alarm reads. The alarm treats missing data as
breaching, so that a monitor that stopped is noticed; the check therefore always yields a
figure, 0 when there is nothing to be late (no plan, a paused one).

Archive lag: for each plan archiving its binary log, how long ago the newest archived file was
closed (every commit before that is recoverable), over the plan's archive interval; the lag
alarm fires above 2. A paused plan is not late, as for staleness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from platform_backup.domain.plan import Plan, PlanState
from platform_backup.domain.recovery import ArchiveState
from platform_backup.domain.staleness import Staleness, staleness
from platform_backup.services.ports import ArchiveRepository, ExecutionRepository, PlanRepository


@dataclass(frozen=True)
class StalenessReport:
    ratio: float  # the stalest plan's, which is what the alarm compares with 1.5
    plans: list[Staleness]


class StalenessMonitor:
    def __init__(
        self,
        plans: PlanRepository,
        executions: ExecutionRepository,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._executions = executions
        self._clock = clock

    def check(self) -> StalenessReport:
        now = self._clock()
        results = [staleness(plan, self._last_success(plan.id), now) for plan in self._plans.all()]
        return StalenessReport(max((s.ratio for s in results), default=0.0), results)

    def _last_success(self, plan_id: str) -> datetime | None:
        execution = self._executions.last_success(plan_id)
        if execution is None:
            return None
        return execution.finishedAt or execution.startedAt


@dataclass(frozen=True)
class ArchiveLag:
    plan_id: str
    seconds: float
    ratio: float  # seconds over the plan's archive interval
    since: str  # what the lag counts from


def archive_lag(plan: Plan, state: ArchiveState, now: datetime) -> ArchiveLag | None:
    """None for a plan that does not archive."""
    pitr = plan.pointInTime
    if pitr is None or not pitr.enabled:
        return None
    if plan.state == PlanState.PAUSED.value:
        return ArchiveLag(plan.id, 0.0, 0.0, "paused")
    if state.covered_until is not None:
        reference, since = state.covered_until, "newest archived file closed"
    else:
        # Nothing archived yet: late from when the plan (and so its archiving) last changed.
        reference, since = plan.updatedAt, "plan changed, nothing archived yet"
    seconds = max((now - reference).total_seconds(), 0.0)
    return ArchiveLag(plan.id, seconds, seconds / (pitr.archiveIntervalMinutes * 60), since)


class ArchiveLagMonitor:
    def __init__(
        self,
        plans: PlanRepository,
        archive: ArchiveRepository,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._archive = archive
        self._clock = clock

    def check(self) -> list[ArchiveLag]:
        now = self._clock()
        found = []
        for plan in self._plans.all():
            if plan.pointInTime is None or not plan.pointInTime.enabled:
                continue
            lag = archive_lag(plan, self._archive.state(plan.id), now)
            if lag is not None:
                found.append(lag)
        return found

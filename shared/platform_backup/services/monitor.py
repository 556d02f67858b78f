"""The staleness check the monitor runs every few minutes: each plan's ratio of time since its
last successful backup to its cycle (domain/staleness.py), and the one figure the alarm reads.

The alarm treats missing data as breaching, so that a monitor that stopped is noticed; the check
therefore always yields a figure, 0 when there is nothing to be late (no plan, a paused one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from platform_backup.domain.staleness import Staleness, staleness
from platform_backup.services.ports import ExecutionRepository, PlanRepository


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

"""The plan's EventBridge Scheduler schedules, derived from the plan and nothing else: its backup
schedule, and its archive schedule (every archiveIntervalMinutes) while the plan is enabled with
point-in-time recovery on.

The scheduler function owns these writes: the API invokes it after each plan change, and an
hourly run reconciles every plan (and removes schedules whose plan is gone).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from platform_backup.domain.plan import Plan, PlanState
from platform_backup.domain.schedule import build_cron, schedule_start_date
from platform_backup.observability import logger
from platform_backup.services.ports import PlanRepository, SchedulerGateway, ScheduleSpec

SCHEDULE_PREFIX = "pdb-plan-"
ARCHIVE_PREFIX = "pdb-archive-"
# The scheduler retries a failed invoke; the executor keeps one execution per scheduled time, so
# a retried delivery can never make a second backup. Past an hour the run is stale: the next cycle
# takes over, and the event goes to the dead-letter queue for the operator to see.
MAX_RETRY_ATTEMPTS = 3
MAX_EVENT_AGE_SECONDS = 3600


@dataclass(frozen=True)
class ScheduleTargets:
    group: str
    executor_arn: str
    archiver_arn: str
    role_arn: str
    dead_letter_arn: str


def schedule_name(plan_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{plan_id}"


def archive_schedule_name(plan_id: str) -> str:
    return f"{ARCHIVE_PREFIX}{plan_id}"


def wants_archive(plan: Plan) -> bool:
    return (
        plan.state == PlanState.ENABLED.value
        and plan.pointInTime is not None
        and plan.pointInTime.enabled
    )


def archive_schedule(plan: Plan, targets: ScheduleTargets) -> ScheduleSpec:
    """Every archiveIntervalMinutes from its creation; a late run is stale once the next is due."""
    assert plan.pointInTime is not None  # nosec B101  # narrows a type, not a check
    minutes = plan.pointInTime.archiveIntervalMinutes
    return ScheduleSpec(
        name=archive_schedule_name(plan.id),
        group=targets.group,
        expression=f"rate({minutes} minute{'s' if minutes > 1 else ''})",
        timezone="UTC",
        start_date=None,
        enabled=True,
        target_arn=targets.archiver_arn,
        role_arn=targets.role_arn,
        dead_letter_arn=targets.dead_letter_arn,
        input=json.dumps(
            {
                "planId": plan.id,
                "scheduledTime": "<aws.scheduler.scheduled-time>",
                "kind": "archive",
            },
            separators=(",", ":"),
        ),
        description=f"Binary-log archive of plan '{plan.name}'",
        retry_attempts=MAX_RETRY_ATTEMPTS,
        max_event_age_seconds=max(60, minutes * 60),
    )


def desired_schedule(plan: Plan, targets: ScheduleTargets, now: datetime) -> ScheduleSpec:
    return ScheduleSpec(
        name=schedule_name(plan.id),
        group=targets.group,
        expression=build_cron(plan.policy),
        timezone=plan.policy.timezone,
        start_date=schedule_start_date(plan.policy, now),
        enabled=plan.state == PlanState.ENABLED.value,
        target_arn=targets.executor_arn,
        role_arn=targets.role_arn,
        dead_letter_arn=targets.dead_letter_arn,
        input=json.dumps(
            {"planId": plan.id, "scheduledTime": "<aws.scheduler.scheduled-time>"},
            separators=(",", ":"),
        ),
        description=f"Backup plan '{plan.name}' of the platform database",
        retry_attempts=MAX_RETRY_ATTEMPTS,
        max_event_age_seconds=MAX_EVENT_AGE_SECONDS,
    )


class ScheduleReconciler:
    def __init__(
        self,
        plans: PlanRepository,
        gateway: SchedulerGateway,
        targets: ScheduleTargets,
        clock: Callable[[], datetime],
    ) -> None:
        self._plans = plans
        self._gateway = gateway
        self._targets = targets
        self._clock = clock

    def reconcile(self, plan_id: str) -> str:
        """Brings one plan's schedules in line with the stored plan. Returns what it did."""
        group = self._targets.group
        plan = self._plans.find(plan_id)
        if plan is None:
            self._gateway.delete(group, schedule_name(plan_id))
            self._gateway.delete(group, archive_schedule_name(plan_id))
            return "deleted"
        self._gateway.upsert(desired_schedule(plan, self._targets, self._clock()))
        if wants_archive(plan):
            self._gateway.upsert(archive_schedule(plan, self._targets))
        else:
            self._gateway.delete(group, archive_schedule_name(plan_id))
        return "enabled" if plan.state == PlanState.ENABLED.value else "disabled"

    def reconcile_all(self) -> dict[str, str]:
        plans = {plan.id: plan for plan in self._plans.all()}
        done = {plan_id: self.reconcile(plan_id) for plan_id in plans}
        for prefix in (SCHEDULE_PREFIX, ARCHIVE_PREFIX):
            for name in self._gateway.names(self._targets.group, prefix):
                plan_id = name.removeprefix(prefix)
                if plan_id not in plans:
                    logger.warning("removing the schedule of a plan that is gone", schedule=name)
                    self._gateway.delete(self._targets.group, name)
                    done[plan_id] = "deleted"
        return done

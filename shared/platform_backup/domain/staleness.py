"""How stale the plan's backups are: the time since its last successful backup over its cycle.

A CloudWatch alarm cannot wait a weekly cycle, so the monitor publishes this ratio every few
minutes and the alarm compares it with 1.5. Pure: no AWS, no clock (``now`` is given).

The cycle is the longest gap between consecutive runs of the plan's current schedule, taken from
the same run times the scheduler fires at: SUN,TUE is 5 days (Tuesday to Sunday), not a week
split in two, so no regular gap ever looks late; daylight saving changes lengthen it by the
hour they add.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from platform_backup.domain.plan import Plan, PlanState, Policy
from platform_backup.domain.schedule import next_runs

# Every cycle repeats within a week; a day more takes in a daylight saving change at the end.
_WINDOW = timedelta(days=8)
# An hourly plan, the most frequent, fires this many times within the window.
_RUNS_IN_WINDOW = 8 * 24 + 1


@dataclass(frozen=True)
class Staleness:
    plan_id: str
    ratio: float
    # Both None when the plan is not expected to have run (paused, or not started yet).
    seconds_since: float | None
    cycle_seconds: float | None
    since: str  # what seconds_since counts from, or why nothing is counted


def cycle_seconds(policy: Policy, now: datetime) -> float:
    """The longest gap, in seconds, between consecutive runs of the policy from now on."""
    # In UTC: datetimes sharing a zone subtract as wall times, blind to daylight saving.
    runs = [run.astimezone(UTC) for run in next_runs(policy, now, _RUNS_IN_WINDOW)]
    window = [run for run in runs if run - runs[0] <= _WINDOW]
    return max((later - earlier).total_seconds() for earlier, later in pairwise(window))


def staleness(plan: Plan, last_success: datetime | None, now: datetime) -> Staleness:
    """The plan's ratio of time since its last success (or, never having had one, since it
    started) to its cycle. A paused plan, or one whose start time is ahead, is not late: 0."""
    if plan.state == PlanState.PAUSED.value:
        return Staleness(plan.id, 0.0, None, None, "paused")
    if plan.policy.startTime > now:
        return Staleness(plan.id, 0.0, None, None, "start time ahead")
    if last_success is not None:
        reference, since = last_success, "last success"
    else:
        # A start time before the plan existed does not make it late from that time.
        reference, since = max(plan.policy.startTime, plan.createdAt), "start, no success yet"
    seconds = max((now - reference).total_seconds(), 0.0)
    cycle = cycle_seconds(plan.policy, now)
    return Staleness(plan.id, seconds / cycle, seconds, cycle, since)

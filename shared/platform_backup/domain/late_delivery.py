"""When a scheduled delivery is too late to run: EventBridge Scheduler retries, Lambda's
asynchronous queue or a paused account can deliver a run hours after its time, and a backup run
then would only hold the plan when the next one is due.

The bound is half the gap from the scheduled run to the plan's next run: half the cycle for
hourly and daily plans; for weekly plans the gap that follows that day (SUN,TUE: a Sunday run is
late after a day, a Tuesday run after two and a half). A time between two runs (the plan changed
since, or a hand-made event) gets half the gap it falls in. Pure: no AWS, no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from platform_backup.domain.plan import Policy
from platform_backup.domain.schedule import build_cron, cron_times

# Every plan's runs repeat within a week; a day more takes in a daylight saving change. An hourly
# plan, the most frequent, fires at most this many times in that span, and twice after it.
_BACK = timedelta(days=8)
_RUNS = 8 * 24 + 4


def delivery_bound(policy: Policy, scheduled: datetime) -> timedelta | None:
    """Half the gap between the policy's runs around ``scheduled`` (the last at or before it,
    the first after it); None when the policy has no run on one side."""
    runs = cron_times(build_cron(policy), policy.timezone, scheduled - _BACK, _RUNS)
    # In UTC: datetimes sharing a zone subtract as wall times, blind to daylight saving.
    moment = scheduled.astimezone(UTC)
    before = [run.astimezone(UTC) for run in runs if run <= moment]
    after = [run.astimezone(UTC) for run in runs if run > moment]
    if not before or not after:
        return None
    return (after[0] - before[-1]) / 2


def late_reason(policy: Policy, scheduled: datetime, delivered: datetime) -> str | None:
    """Why a delivery at ``delivered`` of the run scheduled at ``scheduled`` is not run, or None
    when it is on time."""
    bound = delivery_bound(policy, scheduled)
    late = delivered.astimezone(UTC) - scheduled.astimezone(UTC)
    if bound is None or late <= bound:
        return None
    return (
        f"delivered {span(late)} late (scheduled for "
        f"{scheduled.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}), more than half the gap to the "
        f"plan's next run ({span(bound)}): not run, the next scheduled run takes its place"
    )


def span(duration: timedelta) -> str:
    """``2h05m``, ``35m``, ``40s``: how an operator reads a delay."""
    seconds = int(duration.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{hours // 24}d{hours % 24:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"

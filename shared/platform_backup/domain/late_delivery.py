"""When a scheduled delivery is too late to run: EventBridge Scheduler retries, Lambda's
asynchronous queue or a paused account can deliver a run hours after its time, and a backup run
then would only hold the plan when the next one is due.

The bound is half the time from the scheduled time to the plan's next run after it: half the
cycle for hourly and daily plans; for weekly plans the gap that follows that day (SUN,TUE: a
Sunday run is late after a day, a Tuesday run after two and a half). Pure: no AWS, no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from platform_backup.domain.plan import Policy
from platform_backup.domain.schedule import build_cron, cron_times

# A scheduled time is a whole minute: the next run is searched from the minute after.
_AFTER = timedelta(minutes=1)


def delivery_bound(policy: Policy, scheduled: datetime) -> timedelta | None:
    """Half the time from ``scheduled`` to the policy's next run after it (None: no next run)."""
    following = cron_times(build_cron(policy), policy.timezone, scheduled + _AFTER, 1)
    if not following:
        return None
    # In UTC: datetimes sharing a zone subtract as wall times, blind to daylight saving.
    return (following[0].astimezone(UTC) - scheduled.astimezone(UTC)) / 2


def late_reason(policy: Policy, scheduled: datetime, delivered: datetime) -> str | None:
    """Why a delivery at ``delivered`` of the run scheduled at ``scheduled`` is not run, or None
    when it is on time."""
    bound = delivery_bound(policy, scheduled)
    late = delivered.astimezone(UTC) - scheduled.astimezone(UTC)
    if bound is None or late <= bound:
        return None
    return (
        f"delivered {span(late)} late (scheduled for "
        f"{scheduled.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}), more than half the time to the "
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

"""Scheduled times for tests that deliver a schedule's event by hand: recent, as the scheduler
sends them, since a delivery more than half the plan's cycle late is recorded as skipped
(domain/late_delivery.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def on_time(minutes_ago: int = 0) -> str:
    """The whole minute ``minutes_ago`` minutes before now, in the scheduler's format: on time
    for any plan while ``minutes_ago`` stays well under half an hour."""
    moment = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

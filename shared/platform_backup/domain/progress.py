"""How far a long job is and how long it still needs, from what it has done so far; shared by
the backup's progress (bytes dumped) and the restore's (bytes applied)."""

from __future__ import annotations

from dataclasses import dataclass

# Progress is written at most this often.
PROGRESS_SECONDS = 2.0
# A job stops this long before the function's own limit, so an aborted upload or apply is
# cleaned up and the failure recorded while the function still runs.
TIME_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class Estimate:
    percent: float
    eta_seconds: float | None


def estimate(done: int, total: int, elapsed: float, ceiling: float = 1.0) -> Estimate:
    """Percent done and seconds left at the pace so far; no ETA before 1% (too noisy).
    ``ceiling`` caps the fraction when ``total`` is itself an estimate (a dump's size)."""
    fraction = min(done / total, ceiling) if total else 0.0
    eta = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
    return Estimate(
        percent=round(fraction * 100, 1),
        eta_seconds=round(eta, 1) if eta is not None else None,
    )

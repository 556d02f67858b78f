"""Whether a piece of work fits the time a function has left, estimated from its size and a rate,
and the figures that say so. Shared by the remote sync (per object) and the restore (the apply
of a backup, and of the safety backup a rollback would apply)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_backup.domain.progress import TIME_MARGIN_SECONDS

# A restore's apply rate is only learned from a restore at least this big: below it, creating
# tables and connecting dominate, and the rate would refuse every large restore.
MEASURABLE_APPLY_BYTES = 100_000_000


def size_text(n: float) -> str:
    """Decimal units, as operators read disk and network figures: 12.1 GB, 8.5 MB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} bytes"


def rate_text(bytes_per_second: float) -> str:
    return f"{bytes_per_second / 1e6:.1f} MB/s"


def usable_seconds(remaining: float) -> float:
    """What a job may spend of ``remaining``: the margin stays for recording the outcome."""
    return max(remaining - TIME_MARGIN_SECONDS, 0.0)


@dataclass(frozen=True)
class ApplyEstimate:
    """How long applying ``raw_bytes`` of SQL takes at ``rate`` (measured or the default)."""

    raw_bytes: int
    rate: float
    measured: bool

    @property
    def seconds(self) -> float:
        return self.raw_bytes / self.rate if self.rate > 0 else float("inf")

    def describe(self) -> str:
        source = (
            "measured on this plan's last restore"
            if self.measured
            else "the default rate (no restore of this plan measured yet)"
        )
        return (
            f"estimated {self.seconds:.0f} s to apply {size_text(self.raw_bytes)} at "
            f"{rate_text(self.rate)}, {source}"
        )


def apply_estimate(
    raw_bytes: int, measured_rate: float | None, default_rate: float
) -> ApplyEstimate:
    if measured_rate:
        return ApplyEstimate(raw_bytes, measured_rate, True)
    return ApplyEstimate(raw_bytes, default_rate, False)


def step_budget_text(step_seconds: float) -> str:
    return (
        f"{usable_seconds(step_seconds):.0f} s ({step_seconds:.0f} s less a "
        f"{TIME_MARGIN_SECONDS:.0f} s margin)"
    )

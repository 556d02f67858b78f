"""What every composition root shares: the settings (with the tables bound to them), the clock,
and one cache per built use case that tests can reset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar

from platform_backup.adapters.tables import bind_tables
from platform_backup.settings import Settings, get_settings

T = TypeVar("T")
_built: list[Callable[[], None]] = []


def once(build: Callable[[], T]) -> Callable[[], T]:
    """Builds the use case on first call (the cold start) and keeps it for the function's life."""
    cached = lru_cache(maxsize=1)(build)
    _built.append(cached.cache_clear)
    return cached


def reset() -> None:
    """Forgets everything built (tests change the settings between cases)."""
    for clear in _built:
        clear()


def utcnow() -> datetime:
    return datetime.now(UTC)


@once
def settings() -> Settings:
    current = get_settings()
    bind_tables(current)
    return current

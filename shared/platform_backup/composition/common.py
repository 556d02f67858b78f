"""What every composition root shares: reading its settings (and binding the tables to them), the
clock, and one cache per built use case that tests can reset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar

from platform_backup.adapters.tables import bind_tables
from platform_backup.settings import CommonSettings, load

T = TypeVar("T")
S = TypeVar("S", bound=CommonSettings)
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


def settings_of(model: type[S]) -> Callable[[], S]:
    """A root's settings, read once at cold start (a missing variable fails it, named), with the
    tables bound to them."""

    def read() -> S:
        current = load(model)
        bind_tables(current)
        return current

    return once(read)

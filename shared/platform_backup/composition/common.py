"""What every composition root shares: reading its settings (and binding the tables to them), the
clock, and one cache per built use case that tests can reset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar

from platform_backup.adapters.tables import bind_tables
from platform_backup.observability import logger
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


def clear_scratch(function: str) -> None:
    """At cold start and before each job of a function that works in /tmp: its directories take
    the function's prefix, and what a killed predecessor left under it (the option file with the
    password, a spool of up to the whole compressed dump) is removed."""
    from platform_backup.adapters import scratch  # only the functions that work in /tmp

    swept = scratch.begin(function)
    if swept.paths:
        logger.warning(
            "removed what a killed run left in /tmp",
            paths=swept.paths,
            bytes=swept.bytes,
        )

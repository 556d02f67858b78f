"""A function's init (its cold start) and the garbage collector: what init imports lives as long
as the function, so no collection should walk it more than it must.

CPython runs a full collection once enough objects have survived its young generations. boto3,
pydantic, pynamodb and powertools together make tens of thousands of them, so a handler importing
them all used to cross that line during init: one full collection walking every object just made,
freeing nothing (a handler importing only boto3 and powertools' Logger never gets there).
Between ``begin()`` and ``done()`` only the young generations are collected, as in any process;
``done()`` freezes what init made, so that no later collection walks it again (docs/decisions.md).
"""

from __future__ import annotations

import gc

# A full collection only after this many collections of the middle generation: never, in an init.
_NO_FULL_COLLECTION = 1_000_000_000
_thresholds: tuple[int, int, int] | None = None


def begin() -> None:
    """First thing in a handler's file, before its imports."""
    global _thresholds
    if _thresholds is None:
        _thresholds = gc.get_threshold()
    young, middle, _ = _thresholds
    gc.set_threshold(young, middle, _NO_FULL_COLLECTION)


def done() -> None:
    """Last thing in a handler's init: its objects leave the collector's passes for good, and the
    collector's thresholds are back to what they were."""
    global _thresholds
    gc.freeze()
    if _thresholds is not None:
        gc.set_threshold(*_thresholds)
        _thresholds = None

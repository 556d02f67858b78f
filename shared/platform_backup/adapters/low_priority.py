"""The pipeline's own threads (compression, upload) run at nice 19: the dump tool and the
server are the backup's critical path and get the CPU first (docs/decisions.md, "The
pipeline"). Only these threads are lowered; a thread cannot raise its priority again."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

NICE = 19


def lower_priority() -> None:
    """Lowers the calling thread (not the process) to NICE."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def run_yielding(work: Callable[[], None], name: str) -> None:
    """Runs ``work`` in a lowered thread of its own and waits; re-raises what it raised."""
    with ThreadPoolExecutor(1, name, initializer=lower_priority) as worker:
        worker.submit(work).result()

"""The private directories a function works in under /tmp (the option file with the password,
the dump's spool, the client tools' stderr), all named ``pdb-<function>-...``, and the sweep
that removes what a killed predecessor left under that prefix.

A directory in use is known by a lock, not by age or pid: its owner holds an exclusive
``flock`` on the directory for as long as it works there, and the kernel drops the lock when the
owner dies however it dies (SIGKILL, Lambda's timeout). The sweep removes only the entries under
its own prefix whose lock it can take, so a live job of the same function (the local stack can
run several in one /tmp) keeps its files, and other functions' and programs' files are never
looked at.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

ROOT_PREFIX = "pdb-"
# Per invocation (a context variable, not a global): the local stack runs several functions in
# one process, each on its own thread.
_prefix: ContextVar[str] = ContextVar("scratch_prefix", default=ROOT_PREFIX)


def function_prefix(function: str) -> str:
    return f"{ROOT_PREFIX}{function}-"


def prefix() -> str:
    return _prefix.get()


@contextmanager
def directory(base_dir: str | None = None) -> Iterator[Path]:
    """A new 0700 directory under the function's prefix, locked while the caller works in it and
    removed in every outcome the process lives through."""
    path = Path(tempfile.mkdtemp(prefix=_prefix.get(), dir=base_dir))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


@dataclass
class Swept:
    """What a sweep removed: the paths and the bytes they held."""

    paths: list[str] = field(default_factory=list)
    bytes: int = 0


def begin(function: str, base_dir: str | None = None) -> Swept:
    """At cold start and before each job: this invocation's directories are named after its
    function, and what dead owners left under that prefix in ``base_dir`` (/tmp) goes."""
    own = function_prefix(function)
    _prefix.set(own)
    base = Path(base_dir or tempfile.gettempdir())
    swept = Swept()
    try:
        entries = [e for e in base.iterdir() if e.name.startswith(own)]
    except OSError:
        return swept
    for entry in entries:
        size = _size(entry)
        if _remove_if_abandoned(entry):
            swept.paths.append(str(entry))
            swept.bytes += size
    return swept


def _remove_if_abandoned(entry: Path) -> bool:
    if entry.is_symlink() or not entry.is_dir():
        # Nothing of ours is a loose file (fifos and files live inside a directory): a leftover.
        try:
            entry.unlink()
        except OSError:
            return False
        return True
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live job works there
        shutil.rmtree(entry, ignore_errors=True)
        return not entry.exists()
    finally:
        os.close(fd)


def _size(entry: Path) -> int:
    total = 0
    try:
        if entry.is_symlink() or not entry.is_dir():
            return entry.lstat().st_size
        for root, _dirs, files in os.walk(entry):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    continue
    except OSError:
        return total
    return total

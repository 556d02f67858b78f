"""Where moto behaves unlike AWS in a way that matters here, make it behave like AWS.

DynamoDB applies each conditional write and transaction atomically; moto checks conditions and
writes in plain Python, so two threads can both pass a condition that only one would pass on
AWS. Serializing moto's DynamoDB writes restores the atomicity that the single-plan guard, the
lease and the exactly-once execution rely on, so tests of those races test our code, not moto's.

S3 completes a multipart upload in milliseconds. Moto spools every part and object over 5 MB to
a temporary file and, to complete, grows one bytearray part by part, reads each part twice and
copies the whole object once more: over a second of CPU for a 250 MB backup, on the same cores
as the dump tool, which made the local stack (and ``make bench``) measure moto rather than our
pipeline. Here objects stay in memory, keep the bytes they were given, and a completed upload
keeps its parts, joined only when the object is first read; the checks, the ETag and the
checksums are moto's own (tests/unit/test_moto_fidelity.py).

Moto allocates a part-sized buffer per request and object-sized ones per completion, and glibc
gives big freed blocks straight back to the kernel (anything over 32 MB is its own mapping, and
the heap's free top is trimmed), so each comes back as fresh pages that the kernel zeroes on
first touch: measured on the two-core VM, about 7 us a page, 2 CPU-s per 250 MB backup, and a
completion that took 1.1 to 1.6 s. The process hosting moto keeps what it freed for the next
request instead (its memory stays at its high-water mark, which for a local stack is a few
hundred MB).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import io
import os
import threading
from collections.abc import Iterator
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.s3 import models as s3_models
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeKey, FakeMultipart
from moto.s3.utils import compute_checksum
from moto.utilities.utils import md5_hash

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()
_installed = False
# Objects up to this size stay in memory (moto's default spools anything over 5 MB to disk).
S3_IN_MEMORY_BYTES = 1 << 40
# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# Moto's own completion, which ours must match, and its setter of an object's bytes.
moto_complete = FakeMultipart.complete
_moto_value: Any = vars(FakeKey)["value"]
moto_set_value = _moto_value.fset


def install() -> None:
    global _installed
    if _installed:
        return
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def atomic(
            self: DynamoDBBackend, *args: Any, __original: Any = original, **kwargs: Any
        ) -> Any:
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, atomic)
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(S3_IN_MEMORY_BYTES))
    # Moto's own types say bytes where these take Joined too.
    FakeMultipart.complete = _complete  # type: ignore[method-assign,assignment]
    FakeKey.value = property(_moto_value.fget, _set_value)  # type: ignore[method-assign,assignment]
    _keep_freed_memory()
    _installed = True


def _keep_freed_memory() -> bool:
    """No allocation gets a mapping of its own and the heap is never trimmed: freed memory is
    reused, not faulted in again. False where the C library is not glibc."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return all(
            libc.mallopt(option, value)
            for option, value in (
                (_M_MMAP_MAX, 0),
                (_M_TRIM_THRESHOLD, 2**31 - 1),
                # One heap: a request thread's arena would otherwise give back what it freed.
                (_M_ARENA_MAX, 1),
            )
        )
    return False


class Joined:
    """A completed multipart object's bytes, kept as its parts: S3 links the parts of an upload
    it completes, it copies nothing, so completion here costs no copy of the object either. The
    parts are joined into one buffer when the object is first read."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.size = sum(len(part) for part in parts)

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


class _JoinedFile:
    """The file under a key's SpooledTemporaryFile while its bytes are still parts: the first
    use of it but closing joins them into a BytesIO that does the rest."""

    def __init__(self, joined: Joined) -> None:
        self._joined: Joined | None = joined
        self._file: io.BytesIO | None = None

    def close(self) -> None:
        # Closing needs no join: later reads fail as on a closed file.
        self._joined = None
        self._file = self._file or io.BytesIO()
        self._file.close()

    def __getattr__(self, name: str) -> Any:
        if self._file is None:
            assert self._joined is not None
            self._file = io.BytesIO(bytes(self._joined))
            self._joined = None
        return getattr(self._file, name)


def _set_value(self: FakeKey, new_value: bytes | str | Joined) -> None:
    """FakeKey's setter of its bytes, without the copy: an object held in memory keeps the bytes
    it was given (a BytesIO made from bytes shares them, and reads of the whole of it return
    them, until something writes to it; moto writes to an object's buffer only through this
    setter, which replaces the buffer), or the parts it was completed from."""
    buffer: Any = self._value_buffer
    # A SpooledTemporaryFile that has not rolled over to a file on disk.
    in_memory = not getattr(buffer, "_rolled", True)
    if isinstance(new_value, Joined) and in_memory:
        buffer._file = _JoinedFile(new_value)
    elif type(new_value) is bytes and in_memory and len(new_value) <= buffer._max_size:
        buffer._file = io.BytesIO(new_value)
    else:
        moto_set_value(self, bytes(new_value) if isinstance(new_value, Joined) else new_value)
        return
    self.contentsize = len(new_value)


def _complete(
    self: FakeMultipart, body: Iterator[tuple[int, str]]
) -> tuple[Joined, str, tuple[str, str, int] | None]:
    """FakeMultipart.complete with the same checks and results, without copying the object:
    the parts' bytes (shared, see _set_value) become the object's."""
    algorithm = self.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
    checksum_type = self.metadata.get("x-amz-checksum-type") or (
        "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    )
    values: list[bytes] = []
    md5s = bytearray()
    last = None
    for number, etag in body:
        part = self.parts.get(number)
        part_etag = part.etag.replace('"', "") if part is not None else None
        if part is None or part_etag != etag.replace('"', ""):
            raise InvalidPart()
        # Read at each call, as moto does: tests may lower it for small parts.
        if last is not None and last.contentsize < s3_models.S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        md5s.extend(bytes.fromhex(part_etag))
        values.append(part.value)
        last = part
    if not values:
        raise MalformedXML
    whole = Joined(values)
    if checksum_type == "COMPOSITE":
        parts = b"".join(compute_checksum(v, algorithm, encode_base64=False) for v in values)
        checksum = (checksum_type, compute_checksum(parts, algorithm).decode(), len(values))
    else:
        checksum = (checksum_type, compute_checksum(bytes(whole), algorithm).decode(), 1)
    return whole, f"{md5_hash(bytes(md5s)).hexdigest()}-{len(values)}", checksum

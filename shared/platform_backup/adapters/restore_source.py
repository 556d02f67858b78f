"""Reading a backup copy from S3 for a restore: its manifest, its checksum, and the object as a
stream of chunks (read ahead on a thread, so the network overlaps the client's work), pinned to
the object version that was checked."""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.domain.backup import BackupCopy
from platform_backup.domain.frame_index import Frame
from platform_backup.errors import ChecksumMismatch, DependencyFailed, Unprocessable
from platform_backup.services.ports import Checked, Stat

CHUNK = 1 << 20
READ_AHEAD = 8


class SourceUnavailable(DependencyFailed):
    """S3 could not be read (a retry may help)."""

    code = "SourceUnavailable"


class SourceMissing(Unprocessable):
    """The copy's object or manifest is gone."""

    code = "SourceMissing"


def _region(copy: BackupCopy, default: str) -> str:
    return copy.region or default


def _fail(copy: BackupCopy, key: str, exc: Exception) -> Exception:
    code = error_code(exc)
    where = f"s3://{copy.bucket}/{key}"
    if code in ("NoSuchKey", "404", "NoSuchVersion", "NoSuchBucket"):
        return SourceMissing(f"{where} does not exist ({code})")
    return SourceUnavailable(f"{where} could not be read ({code or type(exc).__name__})")


class S3BackupSource:
    def __init__(self, default_region: str) -> None:
        self._region = default_region

    def manifest(self, copy: BackupCopy) -> dict[str, Any]:
        s3 = client("s3", _region(copy, self._region))
        try:
            body = s3.get_object(Bucket=copy.bucket, Key=copy.manifestKey)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _fail(copy, copy.manifestKey, exc) from exc
        try:
            manifest = json.loads(body)
        except ValueError:
            raise ChecksumMismatch(f"the manifest {copy.manifestKey} is not JSON") from None
        if not isinstance(manifest, dict):
            raise ChecksumMismatch(f"the manifest {copy.manifestKey} is not a JSON object")
        return manifest

    def checksum(self, copy: BackupCopy, observe: Callable[[bytes], None] | None = None) -> Checked:
        """Reads the whole object once: its SHA-256, size and version; each chunk also goes to
        ``observe`` (the statement check), so the dump is read once for both."""
        digest = hashlib.sha256()
        size = 0
        version: str | None = None
        for chunk, found_version in self._read(copy, None):
            digest.update(chunk)
            if observe is not None:
                observe(chunk)
            size += len(chunk)
            version = found_version
        return Checked(digest.hexdigest(), size, version)

    def stream(self, copy: BackupCopy, version: str | None, sha256: str) -> Iterator[bytes]:
        """The object's chunks, read ahead. The last chunk is held back until the whole object
        matched ``sha256``, so a changed object never delivers its completion line."""
        return held_until_verified(
            lambda: (c for c, _ in self._read(copy, version)),
            sha256,
            f"s3://{copy.bucket}/{copy.key}",
        )

    def stat(self, copy: BackupCopy) -> Stat:
        s3 = client("s3", _region(copy, self._region))
        try:
            head = s3.head_object(Bucket=copy.bucket, Key=copy.key)
        except (ClientError, BotoCoreError) as exc:
            raise _fail(copy, copy.key, exc) from exc
        return Stat(int(head["ContentLength"]), head.get("VersionId"))

    def frames(
        self,
        copy: BackupCopy,
        version: str | None,
        frames: Sequence[Frame],
        on_read: Callable[[int], None],
        sql: bool = False,
    ) -> Iterator[bytes]:
        # Imported here: the API reads manifests with this class and has no use for zstandard.
        from platform_backup.adapters.frame_source import read_frames, s3_range_reader

        s3 = client("s3", _region(copy, self._region))
        reader = s3_range_reader(s3, copy.bucket, copy.key, version)

        def guarded(start: int, end: int) -> bytes:
            try:
                return reader(start, end)
            except (ClientError, BotoCoreError) as exc:
                raise _fail(copy, copy.key, exc) from exc

        return read_frames(guarded, frames, on_read, f"s3://{copy.bucket}/{copy.key}", sql)

    def _read(self, copy: BackupCopy, version: str | None) -> Iterator[tuple[bytes, str | None]]:
        s3 = client("s3", _region(copy, self._region))
        extra = {"VersionId": version} if version and version != "null" else {}
        try:
            response = s3.get_object(Bucket=copy.bucket, Key=copy.key, **extra)
            found = response.get("VersionId")
            for chunk in response["Body"].iter_chunks(CHUNK):
                yield chunk, found
        except (ClientError, BotoCoreError) as exc:
            raise _fail(copy, copy.key, exc) from exc


_END = object()


def held_until_verified(make: Any, sha256: str, where: str) -> Iterator[bytes]:
    """The chunks of ``make()``, read ahead, the last held back until all of them matched
    ``sha256``: a consumer never sees the end of bytes that changed since they were checked."""
    digest = hashlib.sha256()
    pending: bytes | None = None
    for chunk in read_ahead(make):
        digest.update(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    if digest.hexdigest() != sha256:
        raise ChecksumMismatch(f"{where} changed since it was validated: stopped")
    if pending is not None:
        yield pending


def read_ahead(make: Any) -> Iterator[bytes]:
    """Runs the iterator ``make()`` returns on a thread, a few chunks ahead of the consumer."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def pump() -> None:
        try:
            for chunk in make():
                while not stop.is_set():
                    try:
                        buffer.put(chunk, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as exc:
            buffer.put(exc)

    thread = threading.Thread(target=pump, name="restore-read", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # Unblocks a pump waiting to put, so it sees the stop.
        with contextlib.suppress(queue.Empty):
            while True:
                buffer.get_nowait()

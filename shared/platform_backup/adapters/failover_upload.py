"""Uploading the compressed dump as an S3 multipart upload that fails over: when a destination
fails, its upload is aborted and the parts it had are replayed from the spool to the next one,
while the dump goes on."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.buffer_pool import PARTS
from platform_backup.adapters.low_priority import lower_priority
from platform_backup.errors import DependencyFailed

DEFAULT_PART_SIZE = 16 << 20
MAX_PARTS = 10_000
# Part buffers: one being filled, one being uploaded, one ready to go.
POOL_PARTS = 3


class UploadFailed(DependencyFailed):
    """No destination could take the backup; each one's reason is in ``abandoned``."""

    code = "UploadFailed"

    def __init__(self, message: str, abandoned: list[Abandoned]) -> None:
        super().__init__(message)
        self.abandoned = abandoned


class FailoverNeedsRedump(UploadFailed):
    """The primary failed after parts left the stream and nothing was spooled to replay them:
    the fallback can only get the backup from a second dump."""

    code = "FailoverNeedsRedump"


@dataclass(frozen=True)
class Destination:
    """Where one copy may go. Each has its own client (its region, its credentials)."""

    bucket: str
    key: str
    client: Any = field(repr=False, compare=False)
    label: str = ""

    @property
    def manifest_key(self) -> str:
        return self.key + ".manifest.json"


@dataclass(frozen=True)
class Abandoned:
    """A destination given up on, and why (the S3 error code and message)."""

    destination: Destination
    reason: str
    cleanup_error: str | None = None


def part_size_for(expected_bytes: int | None) -> int:
    """Parts big enough that S3's 10,000-part limit holds with room to spare."""
    if not expected_bytes:
        return DEFAULT_PART_SIZE
    needed = -(-expected_bytes * 2 // (MAX_PARTS // 2))
    return max(DEFAULT_PART_SIZE, (needed + (1 << 20) - 1) & ~((1 << 20) - 1))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


class _PartView(io.RawIOBase):
    """A part's bytes in a pooled buffer, read by botocore like a file (it seeks back to retry)
    without a copy into a new object."""

    def __init__(self, data: memoryview) -> None:
        super().__init__()
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), len(self._data) - self._pos)
        buffer[:size] = self._data[self._pos : self._pos + size]
        self._pos += size
        return size

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class Part:
    number: int
    offset: int
    buffer: bytearray
    size: int

    @property
    def data(self) -> memoryview:
        return memoryview(self.buffer)[: self.size]


_FINISH = object()
_STOP = object()


class FailoverUploader(threading.Thread):
    """Uploads parts to the first destination that takes them. When one fails, its multipart
    upload is aborted and the parts it had are replayed from the spool to the next. Runs at the
    compression's lower priority (adapters/low_priority.py)."""

    def __init__(
        self,
        targets: Sequence[Destination],
        spool_path: Path | None,
        content_type: str,
        manifest_for: Callable[[Destination], bytes],
        part_size: int,
    ) -> None:
        super().__init__(name="dump-upload", daemon=True)
        self.targets = list(targets)
        self.queue: queue.Queue[object] = queue.Queue()
        # The producer fills these and the upload gives them back: the only part-sized memory.
        self.free: queue.Queue[bytearray] = queue.Queue()
        for buffer in PARTS.take(part_size, POOL_PARTS):
            self.free.put(buffer)
        self.error: BaseException | None = None
        self.result: Destination | None = None
        self.abandoned: list[Abandoned] = []
        self._content_type = content_type
        self._manifest_for = manifest_for
        self._spool_path = spool_path
        self._index = 0
        self._upload_id: str | None = None
        self._done: list[dict[str, Any]] = []
        self._layout: list[tuple[int, int]] = []
        self._stopping = threading.Event()

    # -- the producer's side

    def put(self, item: object) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def buffer(self) -> bytearray:
        """A free part buffer; waits while all of them are queued or uploading."""
        while True:
            if self.error is not None:
                raise self.error
            try:
                return self.free.get(timeout=0.2)
            except queue.Empty:
                continue

    def finish(self) -> None:
        """Every part is in: complete the upload and store the manifest beside it."""
        self.put(_FINISH)

    def release_buffers(self) -> None:
        """Hands the free part buffers to the next run; only once this thread has ended."""
        if self.is_alive():
            return
        kept = []
        while not self.free.empty():
            kept.append(self.free.get_nowait())
        PARTS.give(kept)

    def stop(self) -> None:
        """Abandon the upload: whatever is open is aborted, nothing is completed."""
        self._stopping.set()
        if self.is_alive():
            with contextlib.suppress(BaseException):
                self.put(_STOP)
            self.join()

    # -- the thread

    def run(self) -> None:
        lower_priority()
        try:
            while True:
                item = self.queue.get()
                if item is _STOP or self._stopping.is_set():
                    break
                if item is _FINISH:
                    self._finish()
                    return
                assert isinstance(item, Part)  # nosec B101  # narrows a type, not a check
                self._layout.append((item.offset, item.size))
                self._deliver(item)
                self.free.put(item.buffer)
        except BaseException as exc:
            self.error = exc
        self._abort_open()

    @property
    def _dest(self) -> Destination:
        return self.targets[self._index]

    def _deliver(self, part: Part) -> None:
        while True:
            try:
                if self._upload_id is None:
                    self._open(part.number - 1)
                self._upload_part(part.number, part.data)
                return
            except (ClientError, BotoCoreError) as exc:
                self._abandon(exc)

    def _finish(self) -> None:
        while True:
            completed = False
            try:
                if self._upload_id is None:
                    self._open(len(self._layout))
                dest = self._dest
                dest.client.complete_multipart_upload(
                    Bucket=dest.bucket,
                    Key=dest.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._done},
                )
                self._upload_id = None
                completed = True
                dest.client.put_object(
                    Bucket=dest.bucket,
                    Key=dest.manifest_key,
                    Body=self._manifest_for(dest),
                    ContentType="application/json",
                    ChecksumAlgorithm="SHA256",
                )
                self.result = dest
                return
            except (ClientError, BotoCoreError) as exc:
                if completed:
                    # The object without its manifest is no backup: take it back, move on.
                    with contextlib.suppress(ClientError, BotoCoreError):
                        self._dest.client.delete_object(
                            Bucket=self._dest.bucket, Key=self._dest.key
                        )
                self._abandon(exc)

    def _open(self, replay_parts: int) -> None:
        dest = self._dest
        created = dest.client.create_multipart_upload(
            Bucket=dest.bucket,
            Key=dest.key,
            ContentType=self._content_type,
            ChecksumAlgorithm="CRC32",
        )
        self._upload_id = created["UploadId"]
        self._done = []
        if replay_parts and self._spool_path is None:
            raise FailoverNeedsRedump(
                f"{self.abandoned[-1].destination.bucket} failed after {replay_parts} parts and"
                " no spool holds them: the fallback needs a second dump",
                self.abandoned,
            )
        if not replay_parts:
            return
        assert self._spool_path is not None  # nosec B101  # narrows a type, not a check
        with self._spool_path.open("rb") as spool:
            for number in range(1, replay_parts + 1):
                offset, size = self._layout[number - 1]
                self._upload_part(number, os.pread(spool.fileno(), size, offset))

    def _upload_part(self, number: int, data: bytes | memoryview) -> None:
        dest = self._dest
        crc = zlib.crc32(data).to_bytes(4, "big")
        response = dest.client.upload_part(
            Bucket=dest.bucket,
            Key=dest.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=_PartView(memoryview(data)),
            ChecksumAlgorithm="CRC32",
            ChecksumCRC32=_b64(crc),
        )
        self._done.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": _b64(crc)}
        )

    def _abandon(self, exc: BaseException) -> None:
        dest = self._dest
        cleanup_error = self._abort_open()
        self.abandoned.append(Abandoned(dest, _reason(exc), cleanup_error))
        self._index += 1
        if self._index >= len(self.targets):
            summary = "; ".join(f"{a.destination.bucket}: {a.reason}" for a in self.abandoned)
            raise UploadFailed(f"no storage could take the backup ({summary})", self.abandoned)

    def _abort_open(self) -> str | None:
        if self._upload_id is None:
            return None
        dest, upload_id = self._dest, self._upload_id
        self._upload_id = None
        try:
            dest.client.abort_multipart_upload(Bucket=dest.bucket, Key=dest.key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            return f"abort of the incomplete upload failed: {_reason(exc)}"
        return None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()

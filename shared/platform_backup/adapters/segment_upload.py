"""Storing one archived binary-log file: zstd level 1 as one frame, the SHA-256 of the stored
bytes, and S3 (one PutObject when small, a multipart upload otherwise). A refused upload is
aborted, so a storage never holds a partial segment; failing over to the next storage is the
archive run's choice (services/archive_runner.py), which fetches the file again for it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client
from platform_backup.adapters.compression import CONTENT_TYPES, LEVELS, compressor
from platform_backup.services.ports import ObjectRef, SegmentWriteRefused, SegmentWritten

PART_BYTES = 16 << 20  # 1 GiB of binary log (max_binlog_size) is far below 10,000 parts


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class _Upload:
    """One object's upload: parts as they fill, or one PutObject if it never outgrows a part."""

    def __init__(self, s3: Any, target: ObjectRef) -> None:
        self._s3 = s3
        self._target = target
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def part(self, data: bytes) -> None:
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(
                Bucket=self._target.bucket,
                Key=self._target.key,
                ContentType=CONTENT_TYPES["zstd"],
                ChecksumAlgorithm="SHA256",
            )
            self._upload_id = created["UploadId"]
        checksum = _b64(hashlib.sha256(data).digest())
        answer = self._s3.upload_part(
            Bucket=self._target.bucket,
            Key=self._target.key,
            UploadId=self._upload_id,
            PartNumber=len(self._parts) + 1,
            Body=data,
            ChecksumSHA256=checksum,
        )
        self._parts.append(
            {"PartNumber": len(self._parts) + 1, "ETag": answer["ETag"], "ChecksumSHA256": checksum}
        )

    def finish(self, last: bytes, sha256: bytes) -> None:
        if self._upload_id is None:
            # S3 checks the whole object's SHA-256 against the one computed here.
            self._s3.put_object(
                Bucket=self._target.bucket,
                Key=self._target.key,
                Body=last,
                ContentType=CONTENT_TYPES["zstd"],
                ChecksumSHA256=_b64(sha256),
            )
            return
        if last:
            self.part(last)
        self._s3.complete_multipart_upload(
            Bucket=self._target.bucket,
            Key=self._target.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self._upload_id = None

    def abort(self) -> None:
        if self._upload_id is not None:
            with contextlib.suppress(ClientError, BotoCoreError):
                self._s3.abort_multipart_upload(
                    Bucket=self._target.bucket, Key=self._target.key, UploadId=self._upload_id
                )
            self._upload_id = None


class S3SegmentWriter:
    def __init__(self, part_bytes: int = PART_BYTES) -> None:
        self._part_bytes = part_bytes

    def write(self, target: ObjectRef, chunks: Iterable[bytes]) -> SegmentWritten:
        upload = _Upload(client("s3", target.region), target)
        zstd = compressor("zstd", LEVELS["zstd"])
        digest = hashlib.sha256()
        pending = bytearray()
        raw = stored = 0
        try:
            for chunk in chunks:
                raw += len(chunk)
                pending += zstd.compress(chunk)
                if len(pending) >= self._part_bytes:
                    part = bytes(pending[: self._part_bytes])
                    del pending[: self._part_bytes]
                    digest.update(part)
                    stored += len(part)
                    upload.part(part)
            pending += zstd.flush()
            last = bytes(pending)
            digest.update(last)
            stored += len(last)
            upload.finish(last, digest.digest())
        except (ClientError, BotoCoreError) as exc:
            upload.abort()
            raise SegmentWriteRefused(f"{target.bucket}: {_reason(exc)}") from exc
        except BaseException:
            upload.abort()
            raise
        return SegmentWritten(raw_bytes=raw, compressed_bytes=stored, sha256=digest.hexdigest())

"""Reading archived binary-log segments from S3 for a replay: the whole object's SHA-256 (the
validation), and its bytes as a stream read ahead, checked against the record as they pass."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.adapters.restore_source import (
    CHUNK,
    SourceMissing,
    SourceUnavailable,
    held_until_verified,
)
from platform_backup.domain.recovery import SegmentCopy
from platform_backup.services.ports import Checked


class S3SegmentStore:
    def __init__(self, default_region: str) -> None:
        self._region = default_region

    def checksum(self, copy: SegmentCopy) -> Checked:
        digest = hashlib.sha256()
        size = 0
        for chunk in self._read(copy):
            digest.update(chunk)
            size += len(chunk)
        return Checked(digest.hexdigest(), size, None)

    def stream(self, copy: SegmentCopy, sha256: str) -> Iterator[bytes]:
        """The object's chunks; the last is held back until the whole matched ``sha256``."""
        return held_until_verified(
            lambda: self._read(copy), sha256, f"s3://{copy.bucket}/{copy.key}"
        )

    def _read(self, copy: SegmentCopy) -> Iterator[bytes]:
        s3 = client("s3", copy.region or self._region)
        where = f"s3://{copy.bucket}/{copy.key}"
        try:
            response = s3.get_object(Bucket=copy.bucket, Key=copy.key)
            yield from response["Body"].iter_chunks(CHUNK)
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise SourceMissing(f"{where} does not exist ({code})") from exc
            raise SourceUnavailable(f"{where} could not be read ({code or 'error'})") from exc

"""Server-side copies to the remote storage, each proven to hold the backup's bytes.

A copy up to 5 GB is one CopyObject that asks S3 for a SHA-256 of the whole new object; S3
computes it from the bytes it wrote, and it must equal the SHA-256 recorded when the dump was
written. Where S3 gives no whole-object checksum (a multipart copy above 5 GB, or a store that
answers without one), the copy is read back and hashed instead (docs/decisions.md).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from datetime import datetime
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.adapters.s3_objects import S3Objects
from platform_backup.domain.remote_lock import ObjectLock
from platform_backup.errors import DependencyFailed
from platform_backup.services.ports import ObjectRef

# One CopyObject up to 5 GB (S3's limit for it); above, a multipart copy of 512 MiB parts.
_SINGLE_COPY_LIMIT = 5 * 1024**3
_COPY = TransferConfig(multipart_threshold=_SINGLE_COPY_LIMIT, multipart_chunksize=512 * 1024**2)
_READ = 8 * 1024**2
# Declared rates for the sync's time check (docs/decisions.md): a server-side copy across regions
# and a read-back, both well below what S3 gives one request; and a fixed allowance per object for
# its requests (the copy, the manifest's copy, the record) with the SDK's retries.
COPY_BYTES_PER_SECOND = 50e6
READ_BACK_BYTES_PER_SECOND = 100e6
REQUESTS_SECONDS = 5.0


class ReplicationFailed(DependencyFailed):
    code = "ReplicationFailed"


def _whole_object_sha256(result: dict[str, Any]) -> str | None:
    """The hex SHA-256 S3 computed over the whole copy; None for a composite one ("...-N")."""
    value = result.get("ChecksumSHA256")
    if not value or "-" in value or result.get("ChecksumType") == "COMPOSITE":
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except ValueError:
        return None


def _lock_to_set(s3: Any, bucket: str, lock: ObjectLock | None) -> ObjectLock | None:
    """``lock`` where the bucket has Object Lock (S3 refuses a retention elsewhere), else None."""
    if lock is None:
        return None
    try:
        found = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        if error_code(exc) == "ObjectLockConfigurationNotFoundError":
            return None
        raise
    return lock if found.get("ObjectLockEnabled") == "Enabled" else None


class S3Replicator:
    def copy(
        self,
        source: ObjectRef,
        target: ObjectRef,
        size: int | None,
        sha256: str | None,
        lock: ObjectLock | None = None,
    ) -> datetime | None:
        s3 = client("s3", target.region)
        try:
            locked = _lock_to_set(s3, target.bucket, lock)
            if size is not None and size <= _SINGLE_COPY_LIMIT:
                answer = s3.copy_object(
                    CopySource={"Bucket": source.bucket, "Key": source.key},
                    Bucket=target.bucket,
                    Key=target.key,
                    ChecksumAlgorithm="SHA256",
                )
                pinned = {"VersionId": answer["VersionId"]} if answer.get("VersionId") else {}
                checksum = _whole_object_sha256(answer.get("CopyObjectResult") or {})
            else:
                s3.copy(
                    {"Bucket": source.bucket, "Key": source.key},
                    target.bucket,
                    target.key,
                    SourceClient=client("s3", source.region),
                    Config=_COPY,
                )
                version = s3.head_object(Bucket=target.bucket, Key=target.key).get("VersionId")
                pinned = {"VersionId": version} if version else {}
                checksum = None
        except (ClientError, BotoCoreError) as exc:
            raise ReplicationFailed(
                f"copy to {target.bucket} failed ({error_code(exc) or type(exc).__name__})"
            ) from exc
        if sha256 is not None:
            if checksum is None:
                checksum = self._read_back(s3, target, pinned, size)
            if checksum != sha256:
                # A locked copy cannot be removed before its date: it stays, unrecorded, and
                # is never served as a backup.
                self._remove(target, pinned)
                raise ReplicationFailed(
                    f"the copy in {target.bucket} does not match the backup's SHA-256: removed"
                )
        return self._lock(s3, target, pinned, locked) if locked else None

    def _lock(
        self, s3: Any, target: ObjectRef, pinned: dict[str, str], lock: ObjectLock
    ) -> datetime | None:
        """Locks the version written (a retention set on it, rather than lock headers on the
        copy, so the multipart copy and moto take it alike), then returns the retain-until date
        as HeadObject shows it (GetObjectRetention is not needed for it)."""
        try:
            s3.put_object_retention(
                Bucket=target.bucket,
                Key=target.key,
                Retention={"Mode": lock.mode, "RetainUntilDate": lock.until},
                **pinned,
            )
            head = s3.head_object(Bucket=target.bucket, Key=target.key, **pinned)
        except (ClientError, BotoCoreError) as exc:
            raise ReplicationFailed(
                f"the copy in {target.bucket} could not be checked for its lock "
                f"({error_code(exc) or type(exc).__name__})"
            ) from exc
        until = head.get("ObjectLockRetainUntilDate")
        return until if isinstance(until, datetime) else None

    def _read_back(
        self, s3: Any, target: ObjectRef, pinned: dict[str, str], size: int | None
    ) -> str | None:
        """The SHA-256 of the very version the copy made (None if its length is wrong)."""
        try:
            body = s3.get_object(Bucket=target.bucket, Key=target.key, **pinned)["Body"]
            digest = hashlib.sha256()
            length = 0
            for chunk in iter(lambda: body.read(_READ), b""):
                digest.update(chunk)
                length += len(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise ReplicationFailed(
                f"the copy in {target.bucket} could not be read back "
                f"({error_code(exc) or type(exc).__name__})"
            ) from exc
        return digest.hexdigest() if size is None or length == size else None

    def _remove(self, target: ObjectRef, pinned: dict[str, str]) -> None:
        # Best effort: a copy left behind unrecorded is never served as a backup.
        with contextlib.suppress(ClientError, BotoCoreError):
            client("s3", target.region).delete_object(
                Bucket=target.bucket, Key=target.key, **pinned
            )

    def seconds_for(self, size: int) -> float:
        """The copy and, as the worst case, a read-back of the whole object."""
        return REQUESTS_SECONDS + size / COPY_BYTES_PER_SECOND + size / READ_BACK_BYTES_PER_SECOND

    def remove(self, target: ObjectRef) -> None:
        S3Objects().delete_every_version(target.bucket, target.region, target.key)

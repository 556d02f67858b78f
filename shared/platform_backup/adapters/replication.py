"""Server-side copies to the remote storage, verified by reading the copy back.

S3's own checksums do not compose across different part sizes, and a cross-region copy may
choose its own parts; re-reading the copy and comparing its SHA-256 with the one recorded when
the dump was written proves the remote bytes are the backup's, whatever S3 did in between.
"""

from __future__ import annotations

import contextlib
import hashlib

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.adapters.s3_objects import S3Objects
from platform_backup.errors import DependencyFailed
from platform_backup.services.ports import ObjectRef

# One CopyObject up to 5 GB (S3's limit for it); above, a multipart copy of 512 MiB parts.
_COPY = TransferConfig(multipart_threshold=5 * 1024**3, multipart_chunksize=512 * 1024**2)
_READ = 8 * 1024**2


class ReplicationFailed(DependencyFailed):
    code = "ReplicationFailed"


class S3Replicator:
    def copy(
        self, source: ObjectRef, target: ObjectRef, size: int | None, sha256: str | None
    ) -> None:
        s3 = client("s3", target.region)
        try:
            s3.copy(
                {"Bucket": source.bucket, "Key": source.key},
                target.bucket,
                target.key,
                SourceClient=client("s3", source.region),
                Config=_COPY,
            )
        except (ClientError, BotoCoreError) as exc:
            raise ReplicationFailed(
                f"copy to {target.bucket} failed ({error_code(exc) or type(exc).__name__})"
            ) from exc
        if sha256 is None:
            return
        try:
            # Read the very version the copy made, not one written after it.
            version = s3.head_object(Bucket=target.bucket, Key=target.key).get("VersionId")
            pinned = {"VersionId": version} if version else {}
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
        if digest.hexdigest() != sha256 or (size is not None and length != size):
            self._remove(target, pinned)
            raise ReplicationFailed(
                f"the copy in {target.bucket} does not match the backup's SHA-256: removed"
            )

    def _remove(self, target: ObjectRef, pinned: dict[str, str]) -> None:
        # Best effort: a copy left behind unrecorded is never served as a backup.
        with contextlib.suppress(ClientError, BotoCoreError):
            client("s3", target.region).delete_object(
                Bucket=target.bucket, Key=target.key, **pinned
            )

    def remove(self, target: ObjectRef) -> None:
        S3Objects().delete_every_version(target.bucket, target.region, target.key)

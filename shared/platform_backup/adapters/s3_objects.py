"""Deleting an object the plan wrote, with every version of it (the buckets are versioned)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.errors import DependencyFailed

# DeleteObjects takes at most this many keys per call.
_BATCH = 1000


class S3Objects:
    def delete_every_version(self, bucket: str, region: str, key: str) -> int:
        """Deletes every version and delete marker of exactly ``key``; returns how many went.
        The listing uses the key as a prefix only to find it: anything else under that prefix
        (``key.part``, another writer's object) is filtered out and never touched."""
        s3 = client("s3", region)
        try:
            versions = [
                {"Key": key, "VersionId": entry["VersionId"]}
                for page in s3.get_paginator("list_object_versions").paginate(
                    Bucket=bucket, Prefix=key
                )
                for entry in (*page.get("Versions", []), *page.get("DeleteMarkers", []))
                if entry["Key"] == key
            ]
            for start in range(0, len(versions), _BATCH):
                batch = versions[start : start + _BATCH]
                response = s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                )
                failed = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchVersion"]
                if failed:
                    raise DependencyFailed(
                        f"s3://{bucket}/{key}: {len(failed)} versions not deleted "
                        f"({failed[0].get('Code')}: {failed[0].get('Message')})"
                    )
        except ClientError as exc:
            raise DependencyFailed(
                f"s3://{bucket}/{key} could not be deleted ({error_code(exc)})"
            ) from exc
        except BotoCoreError as exc:
            raise DependencyFailed(
                f"s3://{bucket}/{key} could not be deleted: {type(exc).__name__}"
            ) from exc
        return len(versions)

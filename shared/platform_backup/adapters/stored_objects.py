"""What a storage holds, read from S3 without the catalog: the objects under a prefix (with size
and age), a manifest, and an object's SHA-256 streamed in chunks (never held whole)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.errors import DependencyFailed
from platform_backup.services.ports import Checked, Deadline, ListedObject

CHUNK = 1 << 20
# A manifest is a few kB (its table list grows with the schema); anything far larger is not one.
MANIFEST_LIMIT = 16 << 20
# Stop reading an object this close to the deadline: the caller still answers.
_MARGIN_SECONDS = 1.0


def _failed(where: str, exc: Exception) -> DependencyFailed:
    return DependencyFailed(f"{where} could not be read ({error_code(exc) or type(exc).__name__})")


class S3StoredObjects:
    def listing(
        self, bucket: str, region: str, prefix: str, start_after: str | None = None
    ) -> Iterator[ListedObject]:
        s3 = client("s3", region)
        extra = {"StartAfter": start_after} if start_after else {}
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, **extra
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    yield ListedObject(entry["Key"], int(entry["Size"]), entry["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"s3://{bucket}/{prefix}", exc) from exc

    def read_json(self, bucket: str, region: str, key: str) -> dict[str, Any]:
        s3 = client("s3", region)
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
            if int(response.get("ContentLength") or 0) > MANIFEST_LIMIT:
                response["Body"].close()
                raise ValueError(f"it is larger than {MANIFEST_LIMIT} bytes")
            body = response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise ValueError("it is gone") from None
            raise _failed(f"s3://{bucket}/{key}", exc) from exc
        try:
            found = json.loads(body)
        except ValueError:
            raise ValueError("it is not JSON") from None
        if not isinstance(found, dict):
            raise ValueError("it is not a JSON object")
        return found

    def sha256(self, bucket: str, region: str, key: str, deadline: Deadline) -> Checked | None:
        s3 = client("s3", region)
        digest = hashlib.sha256()
        size = 0
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if deadline.remaining_seconds() < _MARGIN_SECONDS:
                        return None
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"s3://{bucket}/{key}", exc) from exc
        return Checked(digest.hexdigest(), size, response.get("VersionId"))

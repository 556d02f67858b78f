"""boto3 clients, one per service and region, created lazily and reused across invocations.
The endpoint is botocore's standard AWS_ENDPOINT_URL, so the same code runs on AWS and on moto."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

import boto3
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and 5xx, bounded attempts.
# Downloads are verified against the SHA-256 recorded for the whole backup, which is stronger
# than S3's per-response checksums (composite for multipart objects, so not comparable across
# copies with other part sizes); those are checked only where a call asks for them.
# S3 payloads are not hashed into the signature: every upload carries its own CRC32 checksum,
# and over HTTPS botocore already leaves them unsigned; only a plain-HTTP endpoint (the local
# stack) would otherwise pay a SHA-256 of every byte uploaded.
_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    response_checksum_validation="when_required",
    s3={"payload_signing_enabled": False},
)


@lru_cache(maxsize=32)
def client(service: str, region: str) -> Any:
    session = cast(Any, boto3.session.Session())
    return session.client(service, region_name=region, config=_CONFIG)


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))

"""boto3 clients, one per service and region, created lazily and reused across invocations.
The endpoint is botocore's standard AWS_ENDPOINT_URL, so the same code runs on AWS and on moto."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

import boto3
from botocore.config import Config

# Attempts per call, the first included: boto3's clients and pynamodb's (tables.py) alike.
MAX_ATTEMPTS = 5
# Standard retries (backoff with jitter on throttling and 5xx); response checksums only where
# asked and unsigned payloads: see docs/decisions.md, "boto3 client configuration".
_CONFIG = Config(
    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
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

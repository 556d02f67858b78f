"""Opaque list tokens: DynamoDB's LastEvaluatedKey, encoded so clients cannot read or edit it.

A digest of the content travels with it: a tampered or truncated token is refused (400) instead
of silently starting a list somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from platform_backup.errors import ValidationFailed

_DIGEST_CHARS = 16


def _digest(payload: bytes) -> str:
    return hashlib.sha256(b"pdb-page:" + payload).hexdigest()[:_DIGEST_CHARS]


def encode_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    payload = json.dumps(last_key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _digest(payload)


def decode_token(token: str | None, expected_keys: frozenset[str]) -> dict[str, Any] | None:
    if token is None or token == "":
        return None
    bad = ValidationFailed.of("nextToken", "not a token this API gave out: start the list again")
    body, _, digest = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        key = json.loads(payload)
    except (binascii.Error, ValueError):
        raise bad from None
    if digest != _digest(payload) or not isinstance(key, dict) or set(key) != expected_keys:
        raise bad
    return key

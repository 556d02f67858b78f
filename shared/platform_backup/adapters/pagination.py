"""Opaque, authenticated list tokens: DynamoDB's LastEvaluatedKey, encoded so clients cannot read
or edit it, and signed (HMAC-SHA256) with a key only the API holds (a Secrets Manager secret the
template generates). A forged, tampered, truncated or mistyped token is refused (400 naming
``nextToken``) instead of starting a list somewhere else or reaching DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from typing import Any

from platform_backup.errors import ValidationFailed

_VERSION = "v1"
_KEY_LOCK = threading.Lock()
_key_source: Callable[[], bytes] | None = None
_key: bytes | None = None


def bind_key(source: Callable[[], bytes]) -> None:
    """Where the signing key comes from; read at the first token, then kept (never logged)."""
    global _key_source, _key
    with _KEY_LOCK:
        _key_source, _key = source, None


def _signing_key() -> bytes:
    global _key
    with _KEY_LOCK:
        if _key is None:
            if _key_source is None:
                raise RuntimeError("no page-token key is bound (pagination.bind_key)")
            _key = _key_source()
        return _key


def _mac(payload: bytes) -> str:
    digest = hmac.new(_signing_key(), _VERSION.encode() + b"." + payload, hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    payload = json.dumps(last_key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _mac(payload)


def _valid_key(key: object, expected_keys: frozenset[str]) -> bool:
    # Each value as DynamoDB gave it: one attribute value of a key type.
    return (
        isinstance(key, dict)
        and set(key) == expected_keys
        and all(
            isinstance(value, dict)
            and len(value) == 1
            and next(iter(value)) in ("S", "N", "B")
            and isinstance(next(iter(value.values())), str)
            for value in key.values()
        )
    )


def decode_token(token: str | None, expected_keys: frozenset[str]) -> dict[str, Any] | None:
    # B105: an empty token, not a password.
    if token is None or token == "":  # nosec B105
        return None
    bad = ValidationFailed.of("nextToken", "not a token this API gave out: start the list again")
    body, _, mac = token.partition(".")
    try:
        payload = _b64decode(body)
    except (binascii.Error, ValueError):
        raise bad from None
    # Checked before the payload is parsed: nothing a client wrote is read unless we signed it.
    if not hmac.compare_digest(mac.encode(), _mac(payload).encode()):
        raise bad
    try:
        key = json.loads(payload)
    except ValueError:
        raise bad from None
    if not _valid_key(key, expected_keys):
        raise bad
    return dict(key)

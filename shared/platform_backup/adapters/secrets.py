"""The platform database's connection, from a Secrets Manager secret in the RDS format."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.adapters.mariadb import DbConnection
from platform_backup.errors import DependencyFailed


def read_db_secret(secret_id: str, region: str) -> DbConnection:
    try:
        value = client("secretsmanager", region).get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        raise DependencyFailed(
            f"the database secret could not be read ({error_code(exc) or type(exc).__name__})"
        ) from exc
    try:
        fields = json.loads(value["SecretString"])
        return DbConnection(
            host=str(fields["host"]),
            port=int(fields.get("port", 3306)),
            username=str(fields["username"]),
            password=str(fields.get("password", "")),
        )
    except (KeyError, TypeError, ValueError):
        # Never echo the secret: say only which shape was expected.
        raise DependencyFailed(
            'the database secret is not in the RDS format {"host", "port", "username", "password"}'
        ) from None


def read_key_secret(secret_id: str, region: str) -> bytes:
    """A signing key kept as a secret's string (never logged, never echoed)."""
    try:
        value = client("secretsmanager", region).get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        raise DependencyFailed(
            f"the page-token key could not be read ({error_code(exc) or type(exc).__name__})"
        ) from exc
    key = str(value.get("SecretString") or "").encode()
    if len(key) < 32:
        raise DependencyFailed("the page-token key secret holds fewer than 32 characters")
    return key

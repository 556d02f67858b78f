"""The console API: one resolver, routes split by resource."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from platform_backup.api import (
    errors,
    executions,
    plans,
    recovery_window,
    restores,
    storages,
)

TITLE = "Platform Database Backup API"
VERSION = "1.0.0"

app = APIGatewayRestResolver(enable_validation=True)
app.include_router(storages.router)
app.include_router(plans.router)
app.include_router(recovery_window.router)
app.include_router(executions.router)
app.include_router(restores.router)
errors.register(app)

_JSON_TYPES = ("application/json", "")


def _not_json(event: dict[str, Any]) -> str | None:
    if not event.get("body") or event.get("httpMethod") not in ("POST", "PUT", "PATCH"):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type in _JSON_TYPES or content_type.endswith("+json"):
        return None
    return content_type


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Bodies are JSON: anything else is refused in the contract's error shape (415) before
    the resolver would hand the body to a form parser."""
    content_type = _not_json(event)
    if content_type is not None:
        message = f"the body must be JSON (Content-Type: application/json), not {content_type}"
        body = {"error": {"code": "UnsupportedMediaType", "message": message, "details": []}}
        return {
            "statusCode": 415,
            "multiValueHeaders": {"Content-Type": ["application/json"]},
            "body": json.dumps(body),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)

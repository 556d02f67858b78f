"""Prints the OpenAPI document generated from the routes (`make openapi` commits it)."""

from __future__ import annotations

import json
from typing import Any

from platform_backup.api.app import TITLE, VERSION, app


def document() -> str:
    schema = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description="Console API of the platform database backup service. Every route is "
            "authenticated with AWS SigV4 (AWS_IAM) when deployed.",
        )
    )
    _drop_default_validation_error(schema)
    schema["components"]["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    }
    schema["security"] = [{"sigv4": []}]
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _drop_default_validation_error(schema: dict[str, Any]) -> None:
    """powertools documents a 422 'HTTPValidationError' on every route; this API answers invalid
    input with 400 in the contract's error shape instead (declared per route), so the default
    entry would describe an answer that never comes."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            response = operation.get("responses", {}).get("422")
            if response and "HTTPValidationError" in json.dumps(response):
                del operation["responses"]["422"]
    definitions = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        definitions.pop(name, None)


if __name__ == "__main__":
    print(document(), end="")

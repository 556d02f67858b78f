"""Calls the real API handler with the event API Gateway would send (events/api-create-plan.json
is the real-shaped sample the event is built from)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.invoker import Invoker

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "api-create-plan.json"


@dataclass
class ApiResponse:
    status: int
    body: Any

    @property
    def error_fields(self) -> list[str]:
        return [d["field"] for d in self.body["error"]["details"]]


def rest_event(method: str, url: str, body: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    event["httpMethod"] = method
    event["path"] = parts.path
    event["pathParameters"] = {"proxy": parts.path.removeprefix("/v1/")}
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = "/prod" + parts.path
    event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} or None
    event["multiValueQueryStringParameters"] = query or None
    if body is None:
        event["body"] = None
    else:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


class ApiClient:
    """The API function, invoked through the in-process invoker as Lambda would run it."""

    def __init__(self, invoker: Invoker, function_name: str = "pdb-api") -> None:
        self._invoker = invoker
        self._function = function_name

    def call(self, method: str, url: str, body: Any = None) -> ApiResponse:
        outcome = self._invoker.invoke(self._function, rest_event(method, url, body))
        assert outcome.function_error is None, outcome.payload.decode()
        result = json.loads(outcome.payload)
        text = result.get("body")
        return ApiResponse(result["statusCode"], json.loads(text) if text else None)

    def get(self, url: str) -> ApiResponse:
        return self.call("GET", url)

    def post(self, url: str, body: Any = None) -> ApiResponse:
        return self.call("POST", url, body if body is not None else {})

    def put(self, url: str, body: Any) -> ApiResponse:
        return self.call("PUT", url, body)

    def patch(self, url: str, body: Any) -> ApiResponse:
        return self.call("PATCH", url, body)

    def delete(self, url: str) -> ApiResponse:
        return self.call("DELETE", url)

    def add_storage(
        self, name: str, bucket: str, *, capacity: int = 10**12, prefix: str | None = None
    ) -> str:
        """A local storage on ``bucket`` in us-east-1, created through the API: its id."""
        body: dict[str, Any] = {
            "name": name,
            "role": "local",
            "bucket": bucket,
            "region": "us-east-1",
            "capacityBytes": capacity,
        }
        if prefix is not None:
            body["prefix"] = prefix
        created = self.post("/v1/storages", body)
        assert created.status == 201, created.body
        return str(created.body["id"])

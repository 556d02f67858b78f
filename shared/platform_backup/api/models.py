"""Response shapes of the API that are not domain objects: errors, lists, next runs."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, Field

T = TypeVar("T")


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="ValidationError, NotFound, Conflict, UnprocessableEntity, ...")
    message: str = Field(description="what is wrong and what to do")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody


class ItemList(BaseModel, Generic[T]):
    items: list[T]
    nextToken: str | None = None


class NextRun(BaseModel):
    local: str = Field(description="the run time in the plan's timezone, with its offset")
    utc: str = Field(description="the same instant in UTC")


class NextRuns(BaseModel):
    runs: list[NextRun]


_ERROR_TEXT = {
    400: "The request is malformed or breaks a rule; details name the fields",
    404: "No such resource",
    409: "Conflicts with the current state",
    415: "The body is not JSON",
    422: "Refers to something that cannot be used",
    503: "A service the API depends on failed; nothing was changed",
}


def responses(status: int, model: Any, *errors: int, body: bool = False) -> dict[int, Any]:
    """OpenAPI responses of a route: its success and the errors it can answer, all in the
    contract's error shape (the generated document must describe every answer truthfully)."""
    declared: dict[int, Any] = {}
    if model is None:
        declared[status] = {"description": "Done"}
    else:
        declared[status] = {
            "description": "Success",
            "content": {"application/json": {"model": model}},
        }
    for code in (400, *((415,) if body else ()), *errors):
        declared[code] = {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return declared


def created(body: Any) -> Response[Any]:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=body)


def accepted(body: Any) -> Response[Any]:
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body)


def no_content() -> Response[None]:
    return Response(status_code=204)

"""The one place where errors become HTTP answers, in the contract's shape."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from platform_backup.errors import (
    Conflict,
    DependencyFailed,
    DomainError,
    FieldError,
    NotFound,
    Unprocessable,
    ValidationFailed,
)
from platform_backup.observability import logger

STATUS: dict[type[DomainError], int] = {
    ValidationFailed: 400,
    NotFound: 404,
    Conflict: 409,
    Unprocessable: 422,
    DependencyFailed: 503,
}
INTERNAL_ERROR = "InternalError"
_SERVICE_CODES = {400: ValidationFailed.code, 404: NotFound.code, 409: Conflict.code}
_LOCATIONS = {"body", "query", "path", "header"}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[FieldError],
    request_id: str | None = None,
) -> Response:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "details": [{"field": d.field, "message": d.message} for d in details],
    }
    if request_id:
        error["requestId"] = request_id
    body = {"error": error}
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:] or parts
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    if error.get("type") == "missing":
        return "required"
    if error.get("type") == "extra_forbidden":
        return "not a known field: remove it"
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    return message


def register(app: APIGatewayRestResolver) -> None:

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response:
        details = [FieldError(_field(tuple(e.get("loc", ()))), _message(e)) for e in exc.errors()]
        summary = "; ".join(f"{d.field}: {d.message}" for d in details) or "invalid request"
        return error_response(400, ValidationFailed.code, summary, details)

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response:
        status = next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), 400)
        if status >= 500:
            logger.exception("dependency failed")
        return error_response(status, exc.code, exc.message, exc.details)

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, ServiceError) and exc.status_code < 500:
            # powertools' own 4xx (a method the route lacks): the contract's shape, as it said.
            code = _SERVICE_CODES.get(exc.status_code, "Error")
            return error_response(exc.status_code, code, str(exc.msg), [])
        # Anything no route expects: the contract's shape and the request id to find the log by;
        # the stack goes to the log only.
        request_id = _request_id(app)
        logger.exception("unexpected error", request_id=request_id)
        message = (
            "the service failed unexpectedly; nothing is known to have changed: try again, and "
            f"quote request id {request_id} if it persists"
        )
        return error_response(500, INTERNAL_ERROR, message, [], request_id)

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        path = app.current_event.path
        return error_response(404, NotFound.code, f"no such resource: {path}", [])


def _request_id(app: APIGatewayRestResolver) -> str:
    context = getattr(app, "lambda_context", None)
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        return str(request_id)
    try:
        return str(app.current_event.request_context.request_id or "unknown")
    except (AttributeError, KeyError):
        return "unknown"

"""The local API Gateway: HTTP in, the REST API proxy event to the API function, HTTP out.

The API function is invoked through Lambda (boto3 at the embedded AWS), like any other
function, so the API runs exactly the path a deployed invocation takes.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devstack.template import Template, properties
from platform_backup_cli import console_files

log = logging.getLogger("devstack.gateway")

STAGE = "local"
API_PREFIX = "/v1/"
RESOURCE = "/v1/{proxy+}"
API_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
LOCAL_CALLER_ARN = "arn:aws:iam::123456789012:user/local-operator"
ACCOUNT_ID = "123456789012"


def build_event(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    binary_media_types: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The event API Gateway's REST API sends a proxy integration.

    The body is base64 exactly when its Content-Type is one of the API's binary media types;
    otherwise API Gateway passes it as text.
    """
    url = urlsplit(raw_path)
    path = url.path
    query = parse_qsl(url.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        multi_query.setdefault(key, []).append(value)
    multi_headers: dict[str, list[str]] = {}
    for key, value in headers:
        multi_headers.setdefault(key, []).append(value)
    content_type = multi_headers.get("Content-Type", [""])[-1]
    text_body, is_base64 = _body(body, _is_binary(content_type, binary_media_types))
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    return {
        "resource": RESOURCE,
        "path": path,
        "httpMethod": method,
        "headers": {key: values[-1] for key, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        # REST APIs keep `path` percent-encoded and decode the path parameters.
        "pathParameters": {"proxy": unquote(path[len(API_PREFIX) :])},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": RESOURCE,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": multi_headers.get("Host", ["127.0.0.1"])[-1],
            "identity": {
                "sourceIp": source_ip,
                "userAgent": multi_headers.get("User-Agent", [None])[-1],
                "userArn": LOCAL_CALLER_ARN,
                "user": "local-operator",
                "caller": "local-operator",
                "accountId": ACCOUNT_ID,
                "accessKey": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
            },
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def binary_media_types(template: Template) -> tuple[str, ...]:
    """The binary media types the template's REST API declares."""
    types: list[str] = []
    for resource in template.resources("AWS::Serverless::Api", "AWS::ApiGateway::RestApi").values():
        declared = properties(resource).get("BinaryMediaTypes") or []
        # CloudFormation spells '/' as '~1' in these (a JSON pointer escape).
        types.extend(str(media_type).replace("~1", "/") for media_type in declared)
    return tuple(types)


def _is_binary(content_type: str, binary_media_types: tuple[str, ...]) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    for pattern in binary_media_types:
        kind, _, subtype = pattern.lower().partition("/")
        if pattern == "*/*" or media_type == pattern.lower():
            return True
        if subtype == "*" and media_type.startswith(kind + "/"):
            return True
    return False


def _body(body: bytes, binary: bool) -> tuple[str | None, bool]:
    if not body:
        return None, False
    if binary:
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8", errors="replace"), False


class ApiGateway:
    def __init__(
        self,
        port: int,
        lambda_client: Any,
        function_name: str,
        binary_media_types: tuple[str, ...] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.lambda_client = lambda_client
        self.function_name = function_name
        self.binary_media_types = binary_media_types
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="api-gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def respond(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for the event, as API Gateway makes them of the result."""
        if not event["path"].startswith(API_PREFIX):
            # API Gateway's answer, with IAM authorization, for a path no resource matches.
            return _json(403, {"message": "Missing Authentication Token"})
        response = self.lambda_client.invoke(
            FunctionName=self.function_name, Payload=json.dumps(event).encode()
        )
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            # The invoker logged the handler's traceback; API Gateway hides it from the caller.
            return _json(502, {"message": "Internal server error"})
        try:
            result = json.loads(payload)
            status = int(result["statusCode"])
        except (ValueError, KeyError, TypeError):
            log.error("%s returned no proxy response: %r", self.function_name, payload[:200])
            return _json(502, {"message": "Internal server error"})
        headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((key, str(value)) for value in values)
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
        return status, headers, data


def _json(status: int, body: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(body).encode()


def _handler_class(gateway: ApiGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            started = time.monotonic()
            body = self._read_body()
            path = urlsplit(self.path).path
            if console_files.is_console(path) and self.command in ("GET", "HEAD"):
                # The console's own files; its API calls come back through /v1 like any client's.
                self._send(*console_files.serve(path))
                log.info("%s %s", self.command, self.path)
                return
            event = build_event(
                self.command,
                self.path,
                list(self.headers.items()),
                body,
                self.client_address[0],
                gateway.binary_media_types,
            )
            try:
                status, headers, data = gateway.respond(event)
            except Exception:
                log.exception("%s %s", self.command, self.path)
                status, headers, data = _json(502, {"message": "Internal server error"})
            self._send(status, headers, data)
            elapsed_ms = (time.monotonic() - started) * 1000
            log.info("%s %s %s %.0fms", self.command, self.path, status, elapsed_ms)

        def _send(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, CONNECT, ...) is one API Gateway's ANY does not cover.
            if name.startswith("do_"):
                return self._refuse_method
            raise AttributeError(name)

        def _refuse_method(self) -> None:
            # Read the body even so: on a kept-alive connection it would pass for the next request.
            self._read_body()
            data = json.dumps({"message": "Method Not Allowed"}).encode()
            self.send_response(405)
            self.send_header("Allow", ", ".join(API_METHODS))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            log.info("%s %s 405", self.command, self.path)

        def _read_body(self) -> bytes:
            if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)

        def log_message(self, format: str, *args: Any) -> None:
            # One line per request comes from _serve, with the status and duration.
            pass

    return Handler

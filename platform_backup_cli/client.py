"""The console API over HTTP: JSON in and out, SigV4-signed unless the API is on this machine."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import typer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import get_session

DEFAULT_API = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = 30.0
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


class CliError(Exception):
    """A failure the operator gets as a message and exit status 1, never as a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def lines(self) -> list[str]:
        return [self.message]


class ApiError(CliError):
    """A 4xx or 5xx answer, with the API's message and the fields it names."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details

    def lines(self) -> list[str]:
        fields = (f"{d.get('field', '?')}: {d.get('message', '')}" for d in self.details)
        # A validation error's message already lists its fields; the others add to it.
        extra = [f"  {field}" for field in fields if field not in self.message]
        return [f"{self.message} ({self.status} {self.code})", *extra]


def _error_from(status: int, reason: str, raw: bytes) -> ApiError:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return ApiError(
            status,
            str(error.get("code", "Error")),
            str(error.get("message", reason)),
            list(error.get("details") or []),
        )
    # API Gateway's own refusals (authorization, throttling) answer {"message": ...}.
    if isinstance(body, dict) and (body.get("message") or body.get("Message")):
        return ApiError(status, reason, str(body.get("message") or body.get("Message")), [])
    text = raw.decode(errors="replace").strip()[:500]
    return ApiError(status, reason, text or reason, [])


class Signer:
    """SigV4 for an API Gateway with AWS_IAM authorization, from the standard credential chain."""

    def __init__(self, region: str) -> None:
        credentials = get_session().get_credentials()
        if credentials is None:
            raise CliError(
                "no AWS credentials to sign requests with: configure a profile, "
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on a role"
            )
        self._auth = SigV4Auth(credentials, "execute-api", region)

    def headers(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        self._auth.add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}


def _region_of(host: str) -> str:
    match = _EXECUTE_API_HOST.match(host)
    if match:
        return match.group(1)
    region = os.environ.get("AWS_REGION") or get_session().get_config_variable("region")
    if not region:
        raise CliError(f"cannot tell the region of {host} to sign requests for: set AWS_REGION")
    return str(region)


def _checked_transport(base_url: str, scheme: str, host: str) -> None:
    """A signed request in clear text gives its signature and body to whoever is on the path:
    plain http is for this machine only (where nothing is signed)."""
    if scheme == "https" and host:
        return
    if scheme == "http" and host in _LOCAL_HOSTS:
        return
    if scheme == "http":
        raise CliError(
            f"refusing to send signed requests in clear text to {host}: use https://{host}... "
            f"(--api {base_url.replace('http://', 'https://', 1)}); plain http is only for "
            "localhost, 127.0.0.1 and ::1"
        )
    raise CliError(
        f"the API's URL must start with https:// (or http:// for this machine): {base_url}"
    )


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urllib.parse.urlsplit(self.base_url)
        self._scheme = parts.scheme.lower()
        self._host = parts.hostname or ""
        self.local = self._host in _LOCAL_HOSTS
        self._signer: Signer | None = None

    def signer(self) -> Signer | None:
        # Checked and built at the first request, so `--help` never fails nor looks for
        # credentials; every request (the console's forwarded ones too) passes here first.
        _checked_transport(self.base_url, self._scheme, self._host)
        if self.local:
            return None
        if self._signer is None:
            self._signer = Signer(_region_of(self._host))
        return self._signer

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        url = self.base_url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        signer = self.signer()
        if signer is not None:
            headers = signer.headers(method, url, data, headers)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            # B310: the API address the operator gave, http(s) only.
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # nosec B310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_from(exc.code, str(exc.reason), exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            hint = "start the local stack (make run), or" if self.local else "check the URL, or"
            raise CliError(
                f"cannot reach the API at {self.base_url} ({reason}): "
                f"{hint} name the API with --api or PLATFORM_BACKUP_API"
            ) from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body)

    def delete(self, path: str, **query: Any) -> Any:
        return self.call("DELETE", path, query=query)


def segment(value: str) -> str:
    """An id as one path segment, whatever the operator typed."""
    return urllib.parse.quote(value, safe="")


def api(ctx: typer.Context) -> ApiClient:
    """The client the root command built from --api (click hands ctx.obj down to subcommands)."""
    client: ApiClient = ctx.obj
    return client

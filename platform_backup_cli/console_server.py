"""`platform-backup console`: the web console on this machine, its /v1 calls forwarded to the API
and SigV4-signed with the operator's own credentials (as every other command signs them)."""

from __future__ import annotations

import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import typer

from platform_backup_cli import console_files
from platform_backup_cli.client import TIMEOUT_SECONDS, ApiClient, api
from platform_backup_cli.render import say

# Headers the browser sends that must not reach API Gateway (the signature covers what is sent).
_FORWARDED = ("accept", "content-type")
_RETURNED = ("content-type",)


def forward(client: ApiClient, method: str, path: str, body: bytes) -> console_files.Answer:
    """One console call to the API, signed unless the API is on this machine."""
    url = client.base_url + path
    headers = {"Accept": "application/json"}
    if body:
        headers["Content-Type"] = "application/json"
    signer = client.signer()
    if signer is not None:
        headers = signer.headers(method, url, body or None, headers)
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
    try:
        # B310: the API address the operator gave, http(s) only.
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # nosec B310
            return response.status, _kept(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _kept(exc.headers.items()), exc.read()
    except OSError as exc:
        message = (
            f'{{"message": "cannot reach the API at {client.base_url}: {type(exc).__name__}"}}'
        )
        return 502, [("Content-Type", "application/json")], message.encode()


def _kept(headers: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() in _RETURNED]


def make_server(client: ApiClient, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path.split("?", 1)[0]
            if self.path.startswith("/v1/"):
                answer = forward(client, self.command, self.path, body)
            elif path == "/":
                answer = 302, [("Location", console_files.PREFIX + "/")], b""
            elif console_files.is_console(path) and self.command == "GET":
                answer = console_files.serve(path)
            else:
                answer = 404, [("Content-Type", "text/plain")], b"not found"
            status, headers, data = answer
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def console(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="The local port to serve the console on.")] = 8090,
    host: Annotated[
        str, typer.Option(help="The address to listen on; keep it local: calls carry your rights.")
    ] = "127.0.0.1",
) -> None:
    """Serve the web console here; its calls go to --api, signed with your credentials."""
    client = api(ctx)
    client.signer()  # no credentials: say so now, not at the first click
    server = make_server(client, host, port)
    say(f"console on http://{host}:{server.server_address[1]}/console/ for {client.base_url}")
    say("Ctrl-C stops it")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

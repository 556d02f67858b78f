"""The CLI never sends a SigV4-signed request in clear text: plain http:// is for this machine
(localhost, 127.0.0.1, ::1, where nothing is signed); any other host needs https://, and is
refused with a clear message before a single byte leaves.

A listener on 127.0.0.2 (loopback, but not a name the CLI treats as this machine) records what
reaches it: the signed request an http:// URL would carry, or a TLS handshake. One on 127.0.0.1
shows which route each restore goes to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner, Result

from platform_backup_cli.main import app
from tests.support.listener import Listener, listen

Cli = Callable[..., Result]


@pytest.fixture
def remote() -> Iterator[Listener]:
    yield from listen("127.0.0.2")


@pytest.fixture
def local() -> Iterator[Listener]:
    yield from listen("127.0.0.1")


@pytest.fixture
def cli() -> Cli:
    # Credentials and a region are at hand: only the transport can stop the signing.
    runner = CliRunner(
        env={
            "PLATFORM_BACKUP_API": None,
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00",
            "AWS_SECRET_ACCESS_KEY": "secret-that-must-not-travel",
            "AWS_REGION": "us-east-1",
        }
    )
    return lambda url, *args: runner.invoke(app, ["--api", url, *args])


def test_a_signed_request_over_plain_http_is_refused_before_it_is_sent(
    cli: Cli, remote: Listener
) -> None:
    # When the operator names an API on another host over http://
    for command in (["storages", "list"], ["restore", "start", "--backup", "b1"]):
        result = cli(remote.url("http"), *command)
        # Then the command fails with the reason and the https:// URL to use instead
        assert result.exit_code == 1, result.output
        assert "clear text" in result.output
        assert remote.url("https") in result.output
        assert "Traceback" not in result.output
    # And nothing reached the host: no signature, no body
    assert remote.received == []


def test_the_console_refuses_plain_http_to_another_host_at_start(
    cli: Cli, remote: Listener
) -> None:
    result = cli(remote.url("http"), "console", "--port", "0")
    assert result.exit_code == 1, result.output
    assert "clear text" in result.output
    assert remote.received == []


def test_https_to_another_host_is_used_and_plain_http_stays_for_this_machine(
    cli: Cli, remote: Listener, local: Listener
) -> None:
    # When the other host is named with https://
    over_tls = cli(remote.url("https"), "storages", "list")
    # Then what reached it was a TLS handshake (the listener speaks no TLS, so it fails)
    assert over_tls.exit_code == 1
    assert "cannot reach the API" in over_tls.output
    assert [first[:1] for first in remote.received] == [b"\x16"]
    # When this machine is named with http://
    on_this_machine = cli(local.url("http"), "storages", "list", "--json")
    # Then the request is sent, unsigned
    assert on_this_machine.exit_code == 0, on_this_machine.output
    [request] = local.received
    assert request.startswith(b"GET /v1/storages")
    assert b"authorization" not in request.lower()


def test_an_url_without_http_or_https_is_refused() -> None:
    runner = CliRunner(env={"PLATFORM_BACKUP_API": None})
    result = runner.invoke(app, ["--api", "ftp://api.example.com", "storages", "list"])
    assert result.exit_code == 1
    assert "must start with https://" in result.output


def test_an_in_place_restore_goes_to_the_in_place_routes(cli: Cli, local: Listener) -> None:
    # When the operator restores in place, from a backup and from a time
    by_backup = cli(
        local.url("http"),
        "restore",
        "start",
        "--backup",
        "b1",
        "--mode",
        "in-place",
        "--confirm",
        "platform-db",
    )
    by_time = cli(
        local.url("http"),
        "restore",
        "start",
        "--plan",
        "p1",
        "--before",
        "2026-12-01T00:00:00Z",
        "--mode",
        "in-place",
        "--confirm",
        "platform-db",
    )
    new_databases = cli(local.url("http"), "restore", "start", "--backup", "b1")
    # Then each went to its own route (an IAM policy may allow one and deny the other)
    for result in (by_backup, by_time, new_databases):
        assert result.exit_code == 0, result.output
    lines = [request.split(b"\r\n", 1)[0] for request in local.received]
    assert lines == [
        b"POST /v1/backups/b1/in-place-restores HTTP/1.1",
        b"POST /v1/plans/p1/in-place-restores HTTP/1.1",
        b"POST /v1/backups/b1/restores HTTP/1.1",
    ]

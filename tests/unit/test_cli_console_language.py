"""The CLI speaks the console's language: storages by name, sizes in human units."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from platform_backup_cli.client import ApiClient
from platform_backup_cli.main import app
from platform_backup_cli.render import parse_size

PRIMARY = "a" * 32
STORAGE = {"id": PRIMARY, "name": "primary", "role": "local", "bucket": "pdb-primary"}
PLAN = {
    "id": "p" * 32,
    "name": "platform-db",
    "state": "enabled",
    "localStorageIds": [PRIMARY],
    "remoteSync": False,
    "policy": {
        "cycle": "daily",
        "executionTime": "00:30",
        "startTime": "2026-12-01T00:00:00+08:00",
        "timezone": "Etc/GMT-8",
    },
    "retention": {"local": {"mode": "count", "value": 7}},
    "storages": [
        {**STORAGE, "use": "primary", "capacityBytes": 10**11, "availableBytes": 9 * 10**10}
    ],
}
EXECUTION = {
    "id": "e" * 32,
    "status": "succeeded",
    "phase": "done",
    "backupId": "b1",
    "storageId": PRIMARY,
    "progress": {"bytesDumped": 2048, "percent": 100.0},
}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """The API as the CLI sees it: answers for the few paths these tests use."""
    calls: list[tuple[str, str, Any]] = []

    def call(_: ApiClient, method: str, path: str, body: Any = None, query: Any = None) -> Any:
        calls.append((method, path, body))
        if path == "/v1/storages" and method == "POST":
            return {**STORAGE, **body, "usedBytes": 0, "availableBytes": body["capacityBytes"]}
        if path == "/v1/storages":
            return {"items": [STORAGE], "nextToken": None}
        if path == f"/v1/storages/{PRIMARY}":
            return STORAGE
        if path == "/v1/plans":
            return {"items": [PLAN], "nextToken": None}
        if path.endswith("/executions") or path.startswith("/v1/executions/"):
            return EXECUTION
        raise AssertionError(f"unexpected {method} {path}")

    monkeypatch.setattr(ApiClient, "call", call)
    return calls


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("107374182400", 107374182400),
        ("100GiB", 100 * 2**30),
        ("100 GB", 10**11),
        ("1.5TiB", 3 * 2**39),
        ("512mib", 512 * 2**20),
        ("2k", 2000),
    ],
)
def test_sizes_in_human_units(written: str, size: int) -> None:
    assert parse_size(written) == size


def test_a_size_without_a_known_unit_is_refused() -> None:
    with pytest.raises(typer.BadParameter, match="100GiB"):
        parse_size("100 gallons")


def test_storages_add_takes_a_capacity_in_human_units(sent: list[tuple[str, str, Any]]) -> None:
    args = [
        "storages",
        "add",
        "--name",
        "primary",
        "--role",
        "local",
        "--bucket",
        "pdb-primary",
        "--region",
        "us-east-1",
        "--capacity",
        "100GiB",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sent[-1][2]["capacityBytes"] == 107374182400


def test_plan_show_names_its_storages_with_their_room(sent: list[tuple[str, str, Any]]) -> None:
    result = CliRunner().invoke(app, ["plan", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "primary (primary, 90.0 GB of 100.0 GB free)" in result.output
    assert PRIMARY not in result.output


def test_run_watch_ends_naming_the_storage(sent: list[tuple[str, str, Any]]) -> None:
    result = CliRunner().invoke(
        app, ["run", "--watch", "--interval", "0.1"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "on storage primary" in result.output
    assert PRIMARY not in result.output

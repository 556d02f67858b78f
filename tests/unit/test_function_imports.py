"""Each function loads only what its own use case needs, as Lambda loads it: a fresh interpreter,
the function's directory and the shared layer on the path, `import app` (its cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.local_settings import LOCAL_SETTINGS

REPO = Path(__file__).resolve().parents[2]
# What only the executor and the restore steps need: the dump pipeline, the restore, X-Ray.
BACKUP_AND_RESTORE_MACHINERY = (
    "zstandard",
    "aws_xray_sdk",
    "platform_backup.adapters.dump_",
    "platform_backup.adapters.compression",
    "platform_backup.adapters.failover_upload",
    "platform_backup.adapters.mysql_restore",
    "platform_backup.adapters.restore_source",
    "platform_backup.services.backup_runner",
    "platform_backup.services.restore_steps",
)
_LIST_MODULES = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
# Counts the full collections during init, and reads the collector's state after it.
_WATCH_COLLECTOR = """
import gc, json
before, full = gc.get_threshold(), []
gc.callbacks.append(lambda phase, info: phase == "start" and full.append(info["generation"] == 2))
import app
same = gc.get_threshold() == before
print(json.dumps({"full": sum(full), "young": full.count(False), "same": same,
                  "frozen": gc.get_freeze_count()}))
"""


def _cold_start(
    function: str, drop: str | None = None, code: str = _LIST_MODULES
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / function), str(REPO / "shared")]),
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_TRACE_DISABLED": "true",
        **LOCAL_SETTINGS,
    }
    if drop:
        env.pop(drop)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO / "functions" / function,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("function", ["api", "scheduler", "retention", "monitor"])
def test_control_functions_do_not_load_the_backup_machinery(function: str) -> None:
    # When the function starts cold
    started = _cold_start(function)
    assert started.returncode == 0, started.stderr

    # Then nothing of the dump pipeline or the restore is loaded
    loaded = json.loads(started.stdout)
    heavy = [m for m in loaded if m.startswith(BACKUP_AND_RESTORE_MACHINERY)]
    assert heavy == [], f"{function} loads {heavy}"


# What a control function's use case does not read: its cold start would build it for nothing.
NOT_READ = {
    "scheduler": (
        "platform_backup.domain.execution",
        "platform_backup.domain.backup",
        "platform_backup.domain.retention",
    ),
    "monitor": (
        "platform_backup.domain.backup",
        "platform_backup.domain.retention",
        "platform_backup.adapters.backup_repo",
    ),
    "retention": ("platform_backup.domain.execution", "platform_backup.adapters.execution_repo"),
}


@pytest.mark.parametrize("function", sorted(NOT_READ))
def test_control_functions_load_only_the_records_they_read(function: str) -> None:
    started = _cold_start(function)
    assert started.returncode == 0, started.stderr

    loaded = set(json.loads(started.stdout))
    assert loaded.isdisjoint(NOT_READ[function]), sorted(loaded & set(NOT_READ[function]))


def test_the_api_builds_each_use_case_at_the_first_request_that_needs_it() -> None:
    # When the API starts cold
    started = _cold_start("api")
    assert started.returncode == 0, started.stderr

    # Then it has read its settings, bound the tables (with their clients' retry policy) and the
    # list tokens' key, and loaded no use case's services or adapters: a request loads only its own
    loaded = json.loads(started.stdout)
    bound = {
        "platform_backup.adapters.tables",
        "platform_backup.adapters.aws",
        "platform_backup.adapters.pagination",
    }
    assert bound <= set(loaded)
    built = [
        m
        for m in loaded
        if m.startswith(("platform_backup.services.", "platform_backup.adapters."))
        and m not in bound
    ]
    assert built == [], f"the API loads {built} at cold start"


def test_the_executor_loads_its_pipeline_and_not_the_restore() -> None:
    started = _cold_start("executor")
    assert started.returncode == 0, started.stderr

    loaded = set(json.loads(started.stdout))
    assert "zstandard" in loaded
    assert "platform_backup.adapters.mysql_restore" not in loaded
    assert "platform_backup.services.restore_steps" not in loaded


@pytest.mark.parametrize(
    ("function", "variable"),
    [
        ("api", "RESTORE_STATE_MACHINE_ARN"),
        ("scheduler", "SCHEDULER_ROLE_ARN"),
        ("executor", "DB_SECRET_ARN"),
        ("archiver", "ARCHIVE_TABLE"),
        ("restore", "PLATFORM_DB_NAMES"),
        ("retention", "BACKUPS_TABLE"),
        ("monitor", "PLANS_TABLE"),
    ],
)
def test_a_missing_setting_fails_the_cold_start_naming_it(function: str, variable: str) -> None:
    started = _cold_start(function, drop=variable)

    assert started.returncode != 0
    assert f"{variable} is not set" in started.stderr


@pytest.mark.parametrize(
    "function", ["api", "scheduler", "executor", "archiver", "retention", "restore", "monitor"]
)
def test_init_runs_no_full_garbage_collection_and_freezes_what_it_made(function: str) -> None:
    # When the function starts cold
    started = _cold_start(function, code=_WATCH_COLLECTOR)
    assert started.returncode == 0, started.stderr

    # Then the young generations were collected as usual, but no full collection walked what
    # init imported; that is frozen now, and the collector's thresholds are as they were
    collector = json.loads(started.stdout)
    assert collector["young"] > 0
    assert collector["full"] == 0
    assert collector["frozen"] > 10_000
    assert collector["same"] is True

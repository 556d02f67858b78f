"""Faults caused, not simulated, on the restore function's worker in the middle of the apply,
with the real workflow (statemachines/restore.asl.json run by the local stack's Step Functions):
its Timeout reached while restoring into new databases, and its worker SIGKILLed while
replacing the live databases. The workflow's Rollback ends the restore `rolled-back` with the
reason, never `running`; the new databases are gone, the live ones are as they were before the
restore (CHECKSUM TABLE); the plan is free; the next invocation's /tmp holds nothing of the
killed one's.

The apply is held in its middle by storage that stops answering (as over a dead link): the
backup is read by ranges, one per phase (the header, the databases and table definitions, the
rows...), and every read after the first two hangs, so the tables exist, empty, when it stops."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from moto.s3.responses import S3Response

from tests.integration.test_restore import checksums
from tests.support.databases import RUN_ID, sql
from tests.support.system import PLAN_NAME, RESTORE
from tests.support.worker_faults import (
    Backups,
    hanging,
    protect,
    running_stack,
    small_database,  # noqa: F401  (the fixture)
)

pytestmark = pytest.mark.integration

# The header's read and the definitions' read are answered; the rows' reads are not.
ANSWERED_READS = 2


@pytest.fixture
def restore_env(small_database: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    protect(monkeypatch, small_database)


def _ranged_reads_of(key: str) -> Callable[..., bool]:
    def matches(request: Any, *_: Any, **__: Any) -> bool:
        return bool(request.method == "GET" and key in unquote(str(request.url)))

    return matches


def _mid_apply(backups: Backups, restore_id: str, database: str) -> dict[str, Any]:
    """The restore once it stopped in its rows: its tables made again, still empty."""
    applying = backups.restore_record(restore_id)
    assert (applying["status"], applying["phase"]) == ("running", "restore"), applying
    assert applying["targetTouched"] is True
    assert sorted(sql("SHOW TABLES", database).split()) == ["hosts", "notes"]
    assert sql("SELECT (SELECT count(*) FROM hosts) + (SELECT count(*) FROM notes)", database) == (
        "0\n"
    )
    return applying


def _final(backups: Backups, restore_id: str) -> dict[str, Any]:
    return backups.wait_restore(restore_id, lambda r: r["status"] != "running")


@pytest.mark.usefixtures("restore_env")
def test_the_timeout_reached_mid_apply_of_a_restore_into_new_databases_rolls_it_back(
    monkeypatch: pytest.MonkeyPatch,
    small_database: str,  # noqa: F811
) -> None:
    timeout = 40  # lowered from the template's 900 s, for every step; the stack enforces it
    suffix = f"_fault{RUN_ID}"
    restored = f"{small_database}{suffix}"
    try:
        with running_stack(timeouts={RESTORE: timeout}) as backups:
            # Given a backup, and storage that stops answering the restore's reads of its rows
            backup = backups.backed_up()
            [copy] = backup["copies"]
            with hanging(
                monkeypatch,
                S3Response,
                "_handle_range_header",
                _ranged_reads_of(copy["key"]),
                answered=ANSWERED_READS,
            ) as reading:
                # When a restore into new databases is under way and stops in its rows
                restore_id = backups.restore(
                    backup["id"], {"target": {"mode": "new-database", "databaseSuffix": suffix}}
                )
                assert reading.waiting.wait(120), "the restore never read its rows"
                _mid_apply(backups, restore_id, restored)
                left = backups.scratch(RESTORE)
                assert left, "the apply works in /tmp"
                # And the restore function's time runs out (the stack kills its worker)
                final = _final(backups, restore_id)
            # Then the workflow rolled the restore back, saying why
            assert final["status"] == "rolled-back", final
            assert final["error"].startswith("Sandbox.Timedout: "), final
            assert f"Task timed out after {timeout:.2f} seconds" in final["error"]
            assert final["finishedAt"] is not None
            # And the half-restored databases are gone
            assert sql(f"SHOW DATABASES LIKE '{restored}'") == ""
            # And the plan is free: a run-now backs up at once
            backups.backed_up()
            backups.assert_nothing_left_as_a_backup()
            # And the next invocation in the killed one's environment cleared its /tmp
            assert backups.scratch(RESTORE) == set()
            assert not any(path.exists() for path in left)
    finally:
        sql(f"DROP DATABASE IF EXISTS `{restored}`")


@pytest.mark.usefixtures("restore_env")
def test_an_in_place_restore_killed_mid_apply_rolls_the_live_databases_back(
    monkeypatch: pytest.MonkeyPatch,
    small_database: str,  # noqa: F811
) -> None:
    with running_stack() as backups:
        # Given a backup, and live databases that changed since
        backup = backups.backed_up()
        [copy] = backup["copies"]
        sql(
            "UPDATE hosts SET name = concat(name, '-renamed') WHERE id <= 100; "
            "INSERT INTO notes VALUES (1000, 'written after the backup');",
            small_database,
        )
        before = checksums(small_database)
        with hanging(
            monkeypatch,
            S3Response,
            "_handle_range_header",
            _ranged_reads_of(copy["key"]),
            answered=ANSWERED_READS,
        ) as reading:
            # And an in-place restore that took its safety backup and stopped in its rows:
            # the live tables were dropped and made again, empty
            restore_id = backups.restore(backup["id"], {"confirm": PLAN_NAME}, in_place=True)
            assert reading.waiting.wait(180), "the restore never read its rows"
            assert _mid_apply(backups, restore_id, small_database)["safetyBackupId"]
            left = backups.scratch(RESTORE)
            assert left, "the apply works in /tmp"
            # When the restore function's worker is killed (SIGKILL)
            [pid] = backups.stack.invoker.busy_worker_pids(RESTORE)
            os.kill(pid, signal.SIGKILL)
            reading.release()
            final = _final(backups, restore_id)
        # Then the workflow rolled the live databases back to the safety backup, saying why
        assert final["status"] == "rolled-back", final
        assert final["error"].startswith("Runtime.ExitError: "), final
        assert "signal: killed" in final["error"]
        assert checksums(small_database) == before
        # And the plan is free: a run-now backs up at once
        backups.backed_up()
        backups.assert_nothing_left_as_a_backup()
        # And the next invocation in the killed one's environment cleared its /tmp
        assert backups.scratch(RESTORE) == set()
        assert not any(path.exists() for path in left)

"""Faults caused, not simulated, on the local stack's worker processes: the executor's worker
SIGKILLed mid-dump and mid-sync (its remote copy under way), and the executor's Timeout reached
mid-dump and mid-sync (killed by the stack as Lambda stops a function). Each leaves no object the
catalog does not describe, no upload that will not be aborted, a plan free within one lease
period, and the execution `failed` with the reason by the next trigger; a backup recorded before
the sync stays listed, whole, and gets its remote copy from the next run; the next invocation's
/tmp holds nothing of the killed one's."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.s3.models import S3Backend

from devstack.resources import REMOTE_BUCKET
from tests.support.databases import RUN_ID, sql
from tests.support.system import EXECUTOR
from tests.support.worker_faults import (
    Backups,
    hanging,
    poll,
    protect,
    running_stack,
    small_database,  # noqa: F401  (the fixture)
    the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run,
)

pytestmark = pytest.mark.integration

# A database whose dump runs for several seconds on the local stack: 150 MB of hex that
# compresses about 2:1, so the dump is still running when a test acts on it.
BIG_ROWS = 300_000


@pytest.fixture(scope="module")
def big_database() -> Iterator[str]:
    name = f"pdbt_{RUN_ID}_big"
    sql(f"CREATE DATABASE `{name}`")
    try:
        sql(
            "CREATE TABLE blobs (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB; "
            "INSERT INTO blobs SELECT seq, concat(sha2(rand(), 512), sha2(rand(), 512), "
            f"sha2(rand(), 512), sha2(rand(), 512)) FROM seq_1_to_{BIG_ROWS};",
            name,
        )
        yield name
    finally:
        sql(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def stack_env(big_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    protect(monkeypatch, big_database)


@pytest.fixture
def small_stack_env(small_database: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    protect(monkeypatch, small_database)


def dump_held_once(tmp_path: Path) -> dict[str, dict[str, str]]:
    """The executor's environment with a ``mariadb-dump`` first on its PATH whose first dump
    passes its first megabyte, then holds the rest for 30 s: the dump is still under way when
    the test acts, however fast the machine (a big database alone finished first on a quiet
    one). Later dumps run as they are."""
    directory = tmp_path / "bin"
    directory.mkdir()
    marker = tmp_path / "held-once"
    wrapper = directory / "mariadb-dump"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'DUMP="{shutil.which("mariadb-dump")}"\n'
        'case " $* " in *" --single-transaction "*) ;; *) exec "$DUMP" "$@";; esac\n'
        f'if [ -e "{marker}" ]; then exec "$DUMP" "$@"; fi\n'
        f'touch "{marker}"\n'
        '"$DUMP" "$@" | { head -c 1000000; sleep 30; cat; }\n'
    )
    wrapper.chmod(0o755)
    return {EXECUTOR: {"PATH": f"{directory}{os.pathsep}{os.environ['PATH']}"}}


def _dumping(execution: dict[str, Any]) -> bool:
    assert execution["status"] == "running", execution
    return bool(execution["phase"] == "dumping" and execution["progress"]["bytesDumped"] > 0)


@pytest.mark.usefixtures("stack_env")
def test_a_worker_killed_mid_dump_leaves_a_failed_run_and_a_free_plan(tmp_path: Path) -> None:
    with running_stack(environment=dump_held_once(tmp_path)) as backups:
        # Given a run-now whose dump is under way (held)
        execution_id = backups.run_now()
        backups.wait(execution_id, _dumping)
        assert (tmp_path / "held-once").exists()
        left = backups.scratch(EXECUTOR)
        assert left, "the dump works in /tmp"
        # When the executor's worker is killed (SIGKILL), as an out-of-memory kill would
        [pid] = backups.stack.invoker.busy_worker_pids(EXECUTOR)
        os.kill(pid, signal.SIGKILL)
        died_at = time.monotonic()
        # Then the invocation failed as Lambda reports a runtime that died
        [record] = poll(backups.failure_records)
        assert record["requestPayload"]["executionId"] == execution_id
        assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
        assert "signal: killed" in record["responsePayload"]["errorMessage"]
        # And nothing it wrote is visible as a backup
        assert backups.backups() == []
        backups.assert_nothing_left_as_a_backup()
        # And the next trigger after one lease period runs, and marks the killed run failed
        final = the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run(
            backups, execution_id, died_at
        )
        assert final["status"] == "succeeded", final
        assert len(backups.backups()) == 1
        backups.assert_nothing_left_as_a_backup()
        # And that run, in the killed one's environment, cleared what it left in /tmp
        assert not any(path.exists() for path in left)
        assert backups.scratch(EXECUTOR) == set()


@pytest.mark.usefixtures("stack_env")
def test_the_timeout_reached_mid_dump_leaves_a_failed_run_and_a_free_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given storage that stops answering part uploads (the call hangs, as over a dead link), so
    # the dump stalls and the executor cannot wind its run up within its own time margin
    # (released before the stack stops: its server waits for the hung request)
    timeout = 40  # lowered from the template's 900 s; the stack enforces it as any other
    with (
        running_stack(timeouts={EXECUTOR: timeout}) as backups,
        hanging(monkeypatch, S3Backend, "upload_part", lambda *_, **__: True) as hung,
    ):
        # When a run-now starts its dump and the executor's time runs out
        execution_id = backups.run_now()
        backups.wait(execution_id, _dumping)
        left = backups.scratch(EXECUTOR)
        assert left, "the dump works in /tmp"
        [record] = poll(backups.failure_records, deadline_seconds=timeout + 30)
        died_at = time.monotonic()
        hung.release()
        # Then the invocation failed as Lambda reports a timeout: the worker was killed
        assert record["requestPayload"]["executionId"] == execution_id
        assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
        assert (
            f"Task timed out after {timeout:.2f} seconds"
            in (record["responsePayload"]["errorMessage"])
        )
        assert backups.stack.invoker.busy_worker_pids(EXECUTOR) == []
        # And nothing it wrote is visible as a backup
        assert backups.backups() == []
        backups.assert_nothing_left_as_a_backup()
        # And the next trigger after one lease period runs, and marks the dead run failed
        the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run(
            backups, execution_id, died_at
        )
        backups.assert_nothing_left_as_a_backup()
        # And that run, in the killed one's environment, cleared what it left in /tmp
        assert not any(path.exists() for path in left)
        assert backups.scratch(EXECUTOR) == set()


def _to_the_remote_bucket(_source: Any, bucket: str, *_: Any, **__: Any) -> bool:
    return bucket == REMOTE_BUCKET


def _syncing(backups: Backups, execution_id: str, copying: Any) -> dict[str, Any]:
    """The run once its dump is recorded and its remote copy is under way (and hangs there)."""
    assert copying.waiting.wait(60), "the remote copy never started"
    syncing = backups.execution(execution_id)
    assert (syncing["status"], syncing["phase"]) == ("running", "replicating"), syncing
    assert syncing["backupId"] is not None
    return syncing


def _the_next_run_catches_the_remote_copy_up(
    backups: Backups, dead: str, died_at: float, backup_id: str
) -> None:
    # Meanwhile the backup recorded before the sync is listed, whole, with its local copy only
    [listed] = backups.backups()
    assert listed["id"] == backup_id
    assert [c["role"] for c in listed["copies"]] == ["local"]
    backups.assert_every_listed_copy_is_whole()
    # When the next trigger comes after one lease period: the dead run is failed, the plan free
    final = the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run(
        backups, dead, died_at, backup_id
    )
    # Then the next run succeeds and copies the earlier backup too: both have a remote copy
    assert final["status"] == "succeeded", final
    listed_now = backups.backups()
    assert {b["id"] for b in listed_now} == {backup_id, final["backupId"]}
    for backup in listed_now:
        assert sorted(c["role"] for c in backup["copies"]) == ["local", "remote"], backup
    backups.assert_every_listed_copy_is_whole()
    backups.assert_nothing_left_as_a_backup()
    # And the killed job's /tmp was cleared by the next invocation in its environment
    assert backups.scratch(EXECUTOR) == set()


@pytest.mark.usefixtures("small_stack_env")
def test_a_worker_killed_mid_sync_leaves_its_backup_listed_and_the_next_run_copies_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a plan with remote sync, and a remote bucket whose copies hang (a slow link)
    with (
        running_stack(remote=True) as backups,
        hanging(monkeypatch, S3Backend, "copy_object", _to_the_remote_bucket) as copying,
    ):
        # And a run-now whose dump is recorded and whose remote copy is under way
        execution_id = backups.run_now()
        syncing = _syncing(backups, execution_id, copying)
        # When the executor's worker is killed (SIGKILL)
        [pid] = backups.stack.invoker.busy_worker_pids(EXECUTOR)
        os.kill(pid, signal.SIGKILL)
        died_at = time.monotonic()
        # Then the invocation failed as Lambda reports a runtime that died
        [record] = poll(backups.failure_records)
        assert record["requestPayload"]["executionId"] == execution_id
        assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
        # And the copy S3 received completes with no record of it; nothing lists it
        copying.release()
        _the_next_run_catches_the_remote_copy_up(
            backups, execution_id, died_at, syncing["backupId"]
        )


@pytest.mark.usefixtures("small_stack_env")
def test_the_timeout_reached_mid_sync_leaves_its_backup_listed_and_the_next_run_copies_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a remote bucket whose copies hang: the executor cannot stop a copy once started
    timeout = 45  # room for the dump and one small copy's estimate besides the 30 s margin
    with (
        running_stack(remote=True, timeouts={EXECUTOR: timeout}) as backups,
        hanging(monkeypatch, S3Backend, "copy_object", _to_the_remote_bucket) as copying,
    ):
        # When a run-now's remote copy is under way and the executor's time runs out
        execution_id = backups.run_now()
        syncing = _syncing(backups, execution_id, copying)
        [record] = poll(backups.failure_records, deadline_seconds=timeout + 30)
        died_at = time.monotonic()
        # Then the invocation failed as Lambda reports a timeout: the worker was killed
        assert record["requestPayload"]["executionId"] == execution_id
        assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
        assert backups.stack.invoker.busy_worker_pids(EXECUTOR) == []
        copying.release()
        # And the backup stays listed; the next run catches its remote copy up
        _the_next_run_catches_the_remote_copy_up(
            backups, execution_id, died_at, syncing["backupId"]
        )

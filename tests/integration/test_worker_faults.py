"""Faults caused, not simulated, on the local stack's worker processes: the executor's worker
SIGKILLed mid-dump, and the executor's Timeout reached mid-dump (killed by the stack as Lambda
stops a function). Each leaves no object the catalog does not describe, no upload that will not
be aborted, a plan free within one lease period, and the execution `failed` with the reason by
the next trigger."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.s3.models import S3Backend

from devstack import Stack, start_stack
from devstack.template import load_template, properties
from platform_backup.services.lease_keeper import LEASE_TTL_SECONDS
from tests.support.api import ApiClient
from tests.support.databases import RUN_ID, sql

pytestmark = pytest.mark.integration

EXECUTOR = "pdb-executor"
BUCKETS = {"PrimaryBucket": "pdb-primary", "FallbackBucket": "pdb-fallback"}
ABANDONED = "the executor stopped in the middle of the run (its lease expired)"
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


class Backups:
    """The local stack with one plan on the big database, driven as a user would (the API)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.api = ApiClient(stack.invoker)
        storages = [
            self.api.add_storage(name, bucket, capacity=10**11, prefix="platform-db/")
            for name, bucket in (("primary", "pdb-primary"), ("fallback", "pdb-fallback"))
        ]
        plan = self.api.post(
            "/v1/plans",
            {
                "name": "platform-db",
                "localStorageIds": storages,
                "policy": {"cycle": "hourly", "startTime": "2026-01-01T00:05:00Z"},
                "retention": {"local": {"mode": "count", "value": 7}},
            },
        )
        assert plan.status == 201, plan.body
        self.plan_id: str = plan.body["id"]

    def run_now(self) -> str:
        started = self.api.post(f"/v1/plans/{self.plan_id}/executions")
        assert started.status == 202, started.body
        return str(started.body["id"])

    def execution(self, execution_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/executions/{execution_id}").body)

    def wait(self, execution_id: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        current = self.execution(execution_id)
        while not until(current):
            time.sleep(0.2)
            current = self.execution(execution_id)
        return current

    def backups(self) -> list[dict[str, Any]]:
        return list(self.api.get(f"/v1/backups?planId={self.plan_id}").body["items"])

    def failure_records(self) -> list[dict[str, Any]]:
        sqs = self.stack.aws.client("sqs")
        url = sqs.get_queue_url(QueueName="pdb-executor-failure-queue")["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    def assert_nothing_left_as_a_backup(self) -> None:
        """Every object is one a backup record describes (the object or its manifest), and every
        upload still open sits in a bucket whose lifecycle aborts it."""
        described = {
            key
            for backup in self.backups()
            for copy in backup["copies"]
            for key in (copy["key"], copy["manifestKey"])
        }
        s3 = self.stack.aws.client("s3")
        declared = load_template().resources("AWS::S3::Bucket")
        for logical_id, bucket in BUCKETS.items():
            listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            assert {o["Key"] for o in listed} <= described, bucket
            if s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
                # Moto does not expire uploads; the deployed bucket's rule does.
                rules = properties(declared[logical_id])["LifecycleConfiguration"]["Rules"]
                assert any(
                    rule["Status"] == "Enabled" and "AbortIncompleteMultipartUpload" in rule
                    for rule in rules
                ), bucket


@pytest.fixture
def stack_env(big_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_DB_NAMES", big_database)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@contextmanager
def running_stack(**options: Any) -> Iterator[Backups]:
    # Far in the past: no schedule of the plan comes due while the test runs.
    stack = start_stack(0, 0, clock=lambda: datetime(2001, 1, 1, tzinfo=UTC), **options)
    try:
        yield Backups(stack)
        # Each function ran as its template role: it made no call the role does not grant.
        assert [str(call) for call in stack.iam.ungranted()] == []
    finally:
        stack.stop()


def _dumping(execution: dict[str, Any]) -> bool:
    assert execution["status"] == "running", execution
    return bool(execution["phase"] == "dumping" and execution["progress"]["bytesDumped"] > 0)


def _the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run(
    backups: Backups, abandoned: str, died_at: float
) -> dict[str, Any]:
    # Until the lease runs out the plan is held by the dead run: it stays running
    assert backups.execution(abandoned)["status"] == "running"
    # When the next trigger comes once one lease period has passed since the worker died
    time.sleep(max(0.0, died_at + LEASE_TTL_SECONDS - time.monotonic()))
    following = backups.run_now()
    # Then the abandoned run is failed, saying why
    dead = backups.wait(abandoned, lambda e: e["status"] != "running")
    assert (dead["status"], dead["error"]) == ("failed", ABANDONED)
    assert dead["finishedAt"] is not None and dead["backupId"] is None
    # And the next run was not turned away: the plan was free
    final = backups.wait(following, lambda e: e["status"] != "running")
    assert final["status"] != "skipped", final
    return final


@pytest.mark.usefixtures("stack_env")
def test_a_worker_killed_mid_dump_leaves_a_failed_run_and_a_free_plan() -> None:
    with running_stack() as backups:
        # Given a run-now whose dump is under way
        execution_id = backups.run_now()
        backups.wait(execution_id, _dumping)
        # When the executor's worker is killed (SIGKILL), as an out-of-memory kill would
        [pid] = backups.stack.invoker.busy_worker_pids(EXECUTOR)
        os.kill(pid, signal.SIGKILL)
        died_at = time.monotonic()
        # Then the invocation failed as Lambda reports a runtime that died
        [record] = _poll(backups.failure_records)
        assert record["requestPayload"]["executionId"] == execution_id
        assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
        assert "signal: killed" in record["responsePayload"]["errorMessage"]
        # And nothing it wrote is visible as a backup
        assert backups.backups() == []
        backups.assert_nothing_left_as_a_backup()
        # And the next trigger after one lease period runs, and marks the killed run failed
        final = _the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run(
            backups, execution_id, died_at
        )
        assert final["status"] == "succeeded", final
        assert len(backups.backups()) == 1
        backups.assert_nothing_left_as_a_backup()


@pytest.mark.usefixtures("stack_env")
def test_the_timeout_reached_mid_dump_leaves_a_failed_run_and_a_free_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given storage that stops answering part uploads (the call hangs, as over a dead link), so
    # the dump stalls and the executor cannot wind its run up within its own time margin
    answering = threading.Event()
    upload_part = S3Backend.upload_part

    def hanging_upload_part(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
        answering.wait()
        return upload_part(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "upload_part", hanging_upload_part)
    timeout = 40  # lowered from the template's 900 s; the stack enforces it as any other
    with running_stack(timeouts={EXECUTOR: timeout}) as backups:
        try:
            # When a run-now starts its dump and the executor's time runs out
            execution_id = backups.run_now()
            backups.wait(execution_id, _dumping)
            [record] = _poll(backups.failure_records, deadline_seconds=timeout + 30)
            died_at = time.monotonic()
            answering.set()
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
            _the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run(
                backups, execution_id, died_at
            )
            backups.assert_nothing_left_as_a_backup()
        finally:
            answering.set()  # before the stack stops: its server waits for the hung request


def _poll(read: Callable[[], list[Any]], deadline_seconds: float = 30) -> list[Any]:
    deadline = time.monotonic() + deadline_seconds
    value = read()
    while not value and time.monotonic() < deadline:
        value = read()
    return value

"""Faults caused on the local stack's worker processes (tests/integration/test_worker_faults.py,
tests/integration/test_restore_faults.py): the stack with one plan, driven as a user would (the
API); storage calls that stop answering, as over a dead link, so a job is held where a test
wants to kill it or let its timeout come; and what the users of the plan would notice after."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devstack.resources import REMOTE_BUCKET
from devstack.template import load_template, properties
from platform_backup.services.lease_keeper import LEASE_TTL_SECONDS
from tests.support.databases import RUN_ID, sql
from tests.support.system import System, running_system

BUCKETS = {"PrimaryBucket": "pdb-primary", "FallbackBucket": "pdb-fallback"}
ABANDONED = "the executor stopped in the middle of the run (its lease expired)"


@pytest.fixture(scope="module")
def small_database() -> Iterator[str]:
    """Two small tables: dumped and restored in a second, so a test holds the job where it
    wants it with a storage call that does not answer, not with the data's size."""
    name = f"pdbt_{RUN_ID}_small"
    sql(f"CREATE DATABASE `{name}`")
    try:
        sql(
            "CREATE TABLE hosts (id INT PRIMARY KEY, name VARCHAR(64)) ENGINE=InnoDB; "
            "INSERT INTO hosts SELECT seq, concat('host-', seq) FROM seq_1_to_500; "
            "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB; "
            "INSERT INTO notes SELECT seq, repeat(md5(seq), 8) FROM seq_1_to_500;",
            name,
        )
        yield name
    finally:
        sql(f"DROP DATABASE IF EXISTS `{name}`")


def protect(monkeypatch: pytest.MonkeyPatch, database: str) -> None:
    """The stack started next (running_stack) protects ``database``."""
    monkeypatch.setenv("PLATFORM_DB_NAMES", database)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


class Hung:
    """Calls of a moto method that stop answering: those ``matches(*args)`` says, after the
    first ``answered`` of them, until ``release()``; what they would have done is done then, as
    a request S3 received still completes."""

    def __init__(self, matches: Callable[..., bool], answered: int = 0) -> None:
        self._matches = matches
        self._answered = answered
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.calls = 0
        self.waiting = threading.Event()

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def hanging(owner: Any, *args: Any, **kwargs: Any) -> Any:
            if not self._released.is_set() and self._matches(*args, **kwargs):
                with self._lock:
                    self.calls += 1
                    hangs = self.calls > self._answered
                if hangs:
                    self.waiting.set()
                    self._released.wait()
            return original(owner, *args, **kwargs)

        return hanging

    def release(self) -> None:
        self._released.set()


@contextmanager
def hanging(
    monkeypatch: pytest.MonkeyPatch,
    owner: type,
    name: str,
    matches: Callable[..., bool],
    answered: int = 0,
) -> Iterator[Hung]:
    """``owner.name`` (a moto backend or response method) hangs as ``Hung`` says; released on
    exit at the latest (before the stack stops: its server waits for the hung request)."""
    hung = Hung(matches, answered)
    monkeypatch.setattr(owner, name, hung.wrap(getattr(owner, name)))
    try:
        yield hung
    finally:
        hung.release()


class Backups:
    """The system of tests/support/system.py (the local stack, one plan on the protected
    databases, a primary and a fallback storage), driven through the API; with ``remote``, the
    plan copies each backup to the stack's remote bucket (Object Lock on)."""

    def __init__(self, system: System, remote: bool = False) -> None:
        self.system = system
        self.stack = system.stack
        self.api = system.api
        self.plan_id = system.plan_id
        if remote:
            made = self.api.post(
                "/v1/storages",
                {
                    "name": "remote",
                    "role": "remote",
                    "bucket": REMOTE_BUCKET,
                    "region": "us-east-1",
                    "capacityBytes": 10**11,
                    "prefix": "platform-db/",
                },
            )
            assert made.status == 201, made.body
            plan = self.api.get(f"/v1/plans/{self.plan_id}").body
            body = {k: plan[k] for k in ("name", "localStorageIds", "policy", "retention")}
            body["remoteSync"] = True
            body["remoteStorageId"] = made.body["id"]
            body["retention"]["remote"] = {"mode": "count", "value": 7}
            replaced = self.api.put(f"/v1/plans/{self.plan_id}", body)
            assert replaced.status == 200, replaced.body

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

    def backed_up(self) -> dict[str, Any]:
        """A run-now that succeeded: its backup."""
        done = self.wait(self.run_now(), lambda e: e["status"] != "running")
        assert done["status"] == "succeeded", done
        return dict(self.api.get(f"/v1/backups/{done['backupId']}").body)

    def backups(self) -> list[dict[str, Any]]:
        return list(self.api.get(f"/v1/backups?planId={self.plan_id}").body["items"])

    def restore(self, backup_id: str, body: dict[str, Any], in_place: bool = False) -> str:
        route = "in-place-restores" if in_place else "restores"
        started = self.api.post(f"/v1/backups/{backup_id}/{route}", body)
        assert started.status == 202, started.body
        return str(started.body["id"])

    def restore_record(self, restore_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/v1/restores/{restore_id}").body)

    def wait_restore(
        self, restore_id: str, until: Callable[[dict[str, Any]], bool], seconds: float = 300
    ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        current = self.restore_record(restore_id)
        while not until(current):
            assert time.monotonic() < deadline, current
            time.sleep(0.2)
            current = self.restore_record(restore_id)
        return current

    def failure_records(self) -> list[dict[str, Any]]:
        sqs = self.stack.aws.client("sqs")
        url = sqs.get_queue_url(QueueName="pdb-executor-failure-queue")["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    def assert_every_listed_copy_is_whole(self) -> None:
        """Every copy a listed backup names is a whole object: the backup's bytes, its SHA-256
        (a restore's Validate would pass), and its manifest beside it."""
        s3 = self.stack.aws.client("s3")
        for backup in self.backups():
            for copy in backup["copies"]:
                body = s3.get_object(Bucket=copy["bucket"], Key=copy["key"])["Body"].read()
                assert len(body) == copy["bytes"], copy
                assert hashlib.sha256(body).hexdigest() == backup["sha256"], copy
                s3.head_object(Bucket=copy["bucket"], Key=copy["manifestKey"])

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
        # The remote bucket is a parameter deployed (no rule of ours): copies are single requests.
        listed = s3.list_objects_v2(Bucket=REMOTE_BUCKET).get("Contents", [])
        assert {o["Key"] for o in listed} <= described, REMOTE_BUCKET
        assert not s3.list_multipart_uploads(Bucket=REMOTE_BUCKET).get("Uploads"), REMOTE_BUCKET

    def scratch(self, function: str) -> set[Path]:
        """What the function's jobs keep in /tmp now (``pdb-<function>-*``), in every one of
        its execution environments."""
        root = self.stack.invoker.tmpdir_root(function)
        prefix = f"pdb-{function.removeprefix('pdb-')}-"
        if root is None or not root.is_dir():
            return set()
        return {entry for env in root.iterdir() for entry in env.glob(f"{prefix}*")}


@contextmanager
def running_stack(remote: bool = False, **options: Any) -> Iterator[Backups]:
    """The system on the database ``protect`` named; ``options``: running_system's."""
    databases = os.environ["PLATFORM_DB_NAMES"].split(",")
    with running_system(databases, fallback=True, **options) as system:
        yield Backups(system, remote=remote)


def the_next_trigger_finds_the_plan_free_and_fails_the_abandoned_run(
    backups: Backups, abandoned: str, died_at: float, backup_id: str | None = None
) -> dict[str, Any]:
    """``backup_id``: the backup the dead run recorded before it died, if it got that far."""
    # Until the lease runs out the plan is held by the dead run: it stays running
    assert backups.execution(abandoned)["status"] == "running"
    # When the next trigger comes once one lease period has passed since the worker died
    time.sleep(max(0.0, died_at + LEASE_TTL_SECONDS - time.monotonic()))
    following = backups.run_now()
    # Then the abandoned run ends, saying why
    dead = backups.wait(abandoned, lambda e: e["status"] != "running")
    if backup_id is None:
        assert (dead["status"], dead["error"]) == ("failed", ABANDONED)
    else:
        # (killed in its remote copy: the backup it recorded is good, the copy comes next run)
        assert dead["status"] == "partially-succeeded", dead
        assert dead["error"].startswith(ABANDONED) and backup_id in dead["error"]
    assert dead["finishedAt"] is not None and dead["backupId"] == backup_id
    # And the next run was not turned away: the plan was free
    final = backups.wait(following, lambda e: e["status"] != "running")
    assert final["status"] != "skipped", final
    return final


def poll(read: Callable[[], list[Any]], deadline_seconds: float = 30) -> list[Any]:
    deadline = time.monotonic() + deadline_seconds
    value = read()
    while not value and time.monotonic() < deadline:
        value = read()
    return value

"""The system the integration suites drive: the local stack (devstack.start_stack) protecting the
test's databases, with one plan on them, created through the API. Every function runs in its
own worker processes, with its template's timeout and environment, calling the embedded AWS as
its template role; when the test is done, no function may have made a call its role does not
grant."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from devstack import Stack, start_stack
from devstack.config import DatabaseAccess
from devstack.invoker import Outcome
from platform_backup.adapters.tables import bind_tables
from platform_backup.settings import Settings
from tests.support.api import ApiClient

EXECUTOR = "pdb-executor"
RESTORE = "pdb-restore"
PLAN_NAME = "platform-db"
RESTORE_SECRET = "pdb-restore-db"
LOCAL_STORAGES = {"primary": "pdb-primary", "fallback": "pdb-fallback"}


@dataclass
class System:
    stack: Stack
    api: ApiClient
    plan_id: str
    storages: dict[str, str]  # name -> id
    databases: list[str]

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of the embedded AWS, as an administrator (unchecked). Moto keeps a copied
        object's composite checksum, which botocore would reject on download: tests compare the
        SHA-256 of the whole object instead."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.stack.aws_endpoint,
            region_name=region or self.stack.aws.region,
            config=Config(response_checksum_validation="when_required"),
        )

    def invoke(self, function: str, event: Any) -> Outcome:
        """A RequestResponse invocation of the function, on its workers."""
        return self.stack.invoker.invoke(function, event)

    def configure(
        self,
        function: str,
        *,
        timeout_seconds: int | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """Change the function's configuration, as UpdateFunctionConfiguration does: its next
        invocation starts in a new execution environment that reads it. ``environment`` is set
        over the template's variables."""
        spec = self.stack.invoker.functions[function]
        if timeout_seconds is not None:
            spec = replace(spec, timeout_seconds=timeout_seconds)
        if environment is not None:
            spec = replace(spec, overrides={**(spec.overrides or {}), **environment})
        self.stack.invoker.functions[function] = spec

    @contextmanager
    def log_of(self, function: str) -> Iterator[Callable[[], list[str]]]:
        """The log of the function's invocations in this block (a worker's stderr: what the
        handler prints, its metrics in the embedded metric format included), read by calling
        what this yields. The function's next invocation starts in a new worker whose stderr
        is a file of this block's."""
        with tempfile.TemporaryFile() as sink:
            self.stack.invoker.retire_workers(function)
            saved = os.dup(2)
            os.dup2(sink.fileno(), 2)

            def lines() -> list[str]:
                sink.seek(0)
                return sink.read().decode(errors="replace").splitlines()

            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                self.stack.invoker.retire_workers(function)

    def fire(self, scheduled_time: Any) -> dict[str, Any]:
        """The plan's schedule delivering ``scheduled_time`` to the executor: its result."""
        outcome = self.invoke(EXECUTOR, {"planId": self.plan_id, "scheduledTime": scheduled_time})
        assert outcome.function_error is None, outcome.payload.decode()
        return dict(json.loads(outcome.payload))

    def backup(self, scheduled_time: str) -> dict[str, Any]:
        """A scheduled run that succeeded: its backup, as the API shows it."""
        result = self.fire(scheduled_time)
        assert result["status"] == "succeeded", result
        execution = self.api.get(f"/v1/executions/{result['executionId']}").body
        return dict(self.api.get(f"/v1/backups/{execution['backupId']}").body)

    def executions(self) -> list[dict[str, Any]]:
        return list(self.api.get(f"/v1/executions?planId={self.plan_id}").body["items"])

    def backups(self) -> list[dict[str, Any]]:
        return list(self.api.get(f"/v1/backups?planId={self.plan_id}").body["items"])

    def wait_execution(self, execution_id: str, seconds: float = 120) -> dict[str, Any]:
        return self._wait(f"/v1/executions/{execution_id}", seconds)

    def wait(self, restore_id: str, seconds: float = 300) -> dict[str, Any]:
        """The restore, once it is no longer running."""
        return self._wait(f"/v1/restores/{restore_id}", seconds)

    def _wait(self, url: str, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.api.get(url)
            assert found.status == 200, (url, found.body)
            current = dict(found.body)
            if current["status"] != "running":
                return current
            time.sleep(0.1)
        raise AssertionError(f"{url} still running after {seconds} s")

    def workflow_status(self, restore_id: str) -> str:
        """The status of the restore's Step Functions execution, once it has ended."""
        sfn = self.client("stepfunctions")
        arn = self.settings.restore_state_machine_arn.replace(":stateMachine:", ":execution:")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = str(sfn.describe_execution(executionArn=f"{arn}:{restore_id}")["status"])
            if status != "RUNNING":
                return status
            time.sleep(0.1)
        raise AssertionError("the workflow is still running")


@contextmanager
def running_system(
    databases: list[str],
    *,
    fallback: bool = False,
    run_workflows: bool = True,
    timeouts: Mapping[str, int] | None = None,
    environment: Mapping[str, Mapping[str, str]] | None = None,
    database: DatabaseAccess | None = None,
    restore_database: DatabaseAccess | None = None,
) -> Iterator[System]:
    """The stack protecting ``databases``, with a plan on the primary storage (and the fallback
    with ``fallback``). ``run_workflows=False``: a restore's workflow is started but not run,
    and the test runs its steps. ``timeouts``, ``environment`` and ``database`` (the server
    and login the platform database's secret holds): start_stack's; ``restore_database``: the
    restore user's login, in a secret of its own (RestoreDatabaseSecretArn deployed)."""
    # Read by each function's workers when they start, which is any time during the test.
    variables = {"PLATFORM_DB_NAMES": ",".join(databases)}
    if restore_database is not None:
        variables["RESTORE_DB_SECRET_ARN"] = RESTORE_SECRET
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    # Far in the past: no schedule of the plan comes due while the test runs.
    stack = start_stack(
        0,
        0,
        clock=lambda: datetime(2001, 1, 1, tzinfo=UTC),
        timeouts=timeouts,
        environment=environment,
        database=database,
        run_workflows=run_workflows,
        restore_database=restore_database,
    )
    try:
        # The test's own reads and writes of records (an administrator's) go to this stack.
        bind_tables(stack.settings)
        yield _with_plan(stack, databases, fallback)
        # Each function ran as its template role: it made no call the role does not grant.
        assert [str(call) for call in stack.iam.ungranted()] == []
    finally:
        stack.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _with_plan(stack: Stack, databases: list[str], fallback: bool) -> System:
    api = ApiClient(stack.invoker)
    names = ("primary", "fallback") if fallback else ("primary",)
    storages = {
        name: api.add_storage(name, LOCAL_STORAGES[name], capacity=10**11, prefix="platform-db/")
        for name in names
    }
    plan = api.post(
        "/v1/plans",
        {
            "name": PLAN_NAME,
            "localStorageIds": list(storages.values()),
            "policy": {"cycle": "hourly", "startTime": "2026-01-01T00:05:00Z"},
            "retention": {"local": {"mode": "count", "value": 7}},
        },
    )
    assert plan.status == 201, plan.body
    return System(stack, api, str(plan.body["id"]), storages, databases)


def client_wrapper(
    tmp_path: Path, wrapped: str, function: str = RESTORE
) -> dict[str, dict[str, str]]:
    """The function's environment with a ``mariadb`` first on its PATH that runs
    ``wrapped`` (a shell script whose ``$CLIENT`` is the real client) for what a dump is piped
    into; queries, which pass their SQL with -e, go straight to the real client."""
    directory = tmp_path / "bin"
    directory.mkdir()
    wrapper = directory / "mariadb"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'CLIENT="{shutil.which("mariadb")}"\n'
        'case " $* " in *" -e "*) exec "$CLIENT" "$@";; esac\n' + wrapped
    )
    wrapper.chmod(0o755)
    return {function: {"PATH": f"{directory}{os.pathsep}{os.environ['PATH']}"}}


def fails_once(
    tmp_path: Path, then: str = "", function: str = RESTORE
) -> dict[str, dict[str, str]]:
    """A client that applies the first 300 kB of a dump, then fails (exit 7); once only, after
    which it runs ``then`` and applies the whole dump."""
    marker = tmp_path / "failed-once"
    return client_wrapper(
        tmp_path,
        f'if [ -e "{marker}" ]; then {then} exec "$CLIENT" "$@"; fi\n'
        f'touch "{marker}"\n'
        'head -c 300000 | "$CLIENT" "$@"\n'
        "exit 7\n",
        function,
    )

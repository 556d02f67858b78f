"""Every job ends in a truthful final record: a run-now whose launch the Lambda service refuses
is failed with the reason, and the plan runs again (the local stack's API and executor, the real
MariaDB)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from tests.integration.test_executor import system
from tests.support.system import EXECUTOR, System

__all__ = ["system"]
pytestmark = pytest.mark.integration


def _register_again(system: System, config: dict[str, Any]) -> None:
    """Puts the executor back in the embedded AWS's Lambda as it was (the local stack runs its
    handler file; the code registered is a placeholder)."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    system.client("lambda").create_function(
        FunctionName=EXECUTOR,
        Runtime=config["Runtime"],
        Role=config["Role"],
        Handler=config["Handler"],
        Code={"ZipFile": code.getvalue()},
    )


def test_a_run_now_whose_launch_is_refused_is_failed_and_the_plan_runs_again(
    system: System,
) -> None:
    # Given the executor function is gone from Lambda, so the asynchronous invoke is refused
    lam = system.client("lambda")
    config = lam.get_function(FunctionName=EXECUTOR)["Configuration"]
    lam.delete_function(FunctionName=EXECUTOR)

    # When an operator backs up now
    answer = system.api.post(f"/v1/plans/{system.plan_id}/executions")

    # Then the API says it could not start, naming the execution it recorded as failed
    assert answer.status == 503, answer.body
    message = answer.body["error"]["message"]
    assert "could not be started" in message and "ResourceNotFoundException" in message
    [execution] = system.executions()
    assert execution["id"] in message
    # And that execution is failed with the reason, not running for ever
    assert execution["status"] == "failed"
    assert execution["error"].startswith("the executor could not be started")
    assert "ResourceNotFoundException" in execution["error"]
    assert execution["finishedAt"] is not None

    # When the executor is back and the operator backs up now again
    _register_again(system, config)
    again = system.api.post(f"/v1/plans/{system.plan_id}/executions")

    # Then the plan runs: nothing was left holding it
    assert again.status == 202, again.body
    assert system.wait_execution(again.body["id"])["status"] == "succeeded"
    assert len(system.backups()) == 1

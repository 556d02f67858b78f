"""Every job ends in a truthful final record: a run-now whose launch the Lambda service refuses
is failed with the reason, and the plan runs again (the real API, executor and MariaDB)."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.integration.test_executor import System, system

__all__ = ["system"]
pytestmark = pytest.mark.integration


def _executor_name(system: System) -> str:
    return system.env.settings.executor_function_arn.rsplit(":", 1)[-1]


def _register_again(system: System, name: str) -> None:
    """Puts the executor back in the embedded AWS's Lambda (the local stack runs its handler)."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    role = system.env.client("iam").get_role(RoleName="pdb-test-lambda")["Role"]["Arn"]
    system.env.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )


def test_a_run_now_whose_launch_is_refused_is_failed_and_the_plan_runs_again(
    system: System,
) -> None:
    # Given the executor function is gone from Lambda, so the asynchronous invoke is refused
    name = _executor_name(system)
    system.env.client("lambda").delete_function(FunctionName=name)

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
    _register_again(system, name)
    again = system.api.post(f"/v1/plans/{system.plan_id}/executions")

    # Then the plan runs: nothing was left holding it
    assert again.status == 202, again.body
    assert system.wait(again.body["id"])["status"] == "succeeded"
    assert len(system.backups()) == 1

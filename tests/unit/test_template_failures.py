"""What template.yaml gives the failure paths: retention's failure queue and alarm, its hourly
pass, the alarm on failed restore workflows, the grants the monitor needs to fail abandoned
executions, and the executor's event age the monitor's "never started" rule relies on."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import Template, load_template, properties
from platform_backup.services.abandoned import EXECUTOR_MAX_EVENT_AGE

FUNCTION = "AWS::Serverless::Function"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _function(template: Template, logical_id: str) -> dict[str, Any]:
    return properties(template.resources(FUNCTION)[logical_id])


def _alarms_on(template: Template, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Each alarm's metrics of ``namespace`` (plain or in a metric-math query)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for logical_id, alarm in template.resources("AWS::CloudWatch::Alarm").items():
        props = properties(alarm)
        metrics = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if "Namespace" in props:
            metrics.append(props)
        matching = [m for m in metrics if m.get("Namespace") == namespace]
        if matching:
            found[logical_id] = matching
    return found


def test_a_failed_retention_run_lands_on_a_queue_that_alarms(template: Template) -> None:
    config = _function(template, "RetentionFunction")["EventInvokeConfig"]
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue = on_failure["Destination"]["Fn::GetAtt"][0]
    assert template.resources("AWS::SQS::Queue")[queue]
    watched = [
        dimension["Value"]["Fn::GetAtt"][0]
        for metrics in _alarms_on(template, "AWS/SQS").values()
        for metric in metrics
        for dimension in metric["Dimensions"]
    ]
    assert queue in watched


def test_retention_runs_after_each_success_and_hourly_for_every_plan(template: Template) -> None:
    events = _function(template, "RetentionFunction")["Events"]
    kinds = {event["Type"]: event["Properties"] for event in events.values()}
    assert kinds["Schedule"]["Schedule"] == "rate(1 hour)"
    assert "Backup Succeeded" in kinds["EventBridgeRule"]["Pattern"]["detail-type"]


def test_the_api_may_start_retention_when_a_policy_changes(template: Template) -> None:
    api = _function(template, "ApiFunction")
    assert api["Environment"]["Variables"]["RETENTION_FUNCTION_NAME"] == {
        "Ref": "RetentionFunction"
    }
    assert {"LambdaInvokePolicy": {"FunctionName": {"Ref": "RetentionFunction"}}} in api["Policies"]


def test_failed_restore_workflows_alarm(template: Template) -> None:
    watched = {
        metric["MetricName"]
        for metrics in _alarms_on(template, "AWS/States").values()
        for metric in metrics
        if metric["Dimensions"]
        == [{"Name": "StateMachineArn", "Value": {"Ref": "RestoreStateMachine"}}]
    }
    assert "ExecutionsFailed" in watched


def test_the_monitor_may_read_leases_and_fail_executions(template: Template) -> None:
    policies = _function(template, "MonitorFunction")["Policies"]
    assert {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ExecutionsTable"}}} in policies
    assert {"DynamoDBReadPolicy": {"TableName": {"Ref": "LocksTable"}}} in policies


def test_an_executor_event_lives_as_long_as_the_monitor_waits_for_it(template: Template) -> None:
    config = _function(template, "ExecutorFunction")["EventInvokeConfig"]
    assert config["MaximumEventAgeInSeconds"] == EXECUTOR_MAX_EVENT_AGE.total_seconds()

"""The local stack in this process: the resources it creates agree with template.yaml, a Lambda
invocation at the embedded AWS runs the handler file in the function's worker process (its
timeout enforced, its own environment, warm and keeping its TMPDIR), the gateway sends API
Gateway's event, and the schedule loop fires the schedules moto holds at their times, once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack import Stack, start_stack
from devstack.functions import FunctionSpec
from devstack.gateway import build_event
from devstack.invoker import RETRY_DELAYS_SECONDS, Invoker
from devstack.template import load_template, properties

pytestmark = pytest.mark.integration

# Echoes what it was given: to the caller, and to the file an event names, so a test can see
# what an asynchronous invocation received.
ECHO_HANDLER = """
import json
import os
import tempfile
import time


def lambda_handler(event, context):
    if isinstance(event, dict) and "call" in event:
        import boto3
        import botocore.exceptions

        service, operation, params = event["call"]
        try:
            getattr(boto3.client(service), operation)(**params)
        except botocore.exceptions.ClientError as error:
            return {"error": error.response["Error"]["Code"]}
        return {"error": None}
    if isinstance(event, dict) and "probe" in event:
        left = os.path.join(tempfile.gettempdir(), "left-behind")
        found = os.path.exists(left)
        with open(left, "w") as written:
            written.write("x")
        time.sleep(event.get("sleep", 0))
        return {
            "pid": os.getpid(),
            "found": found,
            "env": {name: os.environ.get(name) for name in event["probe"]},
        }
    outbox = isinstance(event, dict) and (event.get("detail") or event).get("outbox")
    if outbox:
        with open(outbox, "a") as written:
            written.write(json.dumps(event) + "\\n")
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError(event["fail"])
    if isinstance(event, dict) and "httpMethod" in event:
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"X-Echo": ["one", "two"]},
            "body": json.dumps(event),
            "isBase64Encoded": False,
        }
    return {
        "event": event,
        "functionName": context.function_name,
        "remainingMillis": context.get_remaining_time_in_millis(),
    }
"""


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, now: datetime) -> None:
        with self._lock:
            self.now = now


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    # Far from the real time, so only the loop's clock can make these schedules due.
    return FakeClock(datetime(2031, 3, 4, 9, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, clock: FakeClock) -> Iterator[Stack]:
    # In directories named as the retention and executor functions' code, so the template's
    # declarations for those functions (timeout, EventBridge rule, on-failure queue) apply.
    handlers = tmp_path_factory.mktemp("handlers")
    for code_dir in ("retention", "executor", "sleepy", "outsider"):
        (handlers / code_dir).mkdir()
        (handlers / code_dir / "app.py").write_text(ECHO_HANDLER)
    handler = handlers / "retention" / "app.py"
    names = ("pdb-api", "echo", "pdb-retention")
    functions = {name: FunctionSpec(name=name, source=handler) for name in names}
    functions["pdb-executor"] = FunctionSpec("pdb-executor", handlers / "executor" / "app.py")
    functions["missing"] = FunctionSpec(name="missing", source=handlers / "gone" / "app.py")
    # Not the template's: its 2 s timeout is the test's.
    functions["sleepy"] = FunctionSpec(name="sleepy", source=handlers / "sleepy" / "app.py")
    functions["outsider"] = FunctionSpec("outsider", handlers / "outsider" / "app.py")
    started = start_stack(0, 0, functions=functions, clock=clock, timeouts={"sleepy": 2})
    try:
        yield started
        # The template's roles granted every call these tests did not mean to be refused.
        assert [str(call) for call in started.iam.ungranted()] == []
    finally:
        started.stop()


def _poll(read: Callable[[], Any], deadline_seconds: float = 30) -> Any:
    """The first truthy value read() returns, or the last one when the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    value = read()
    while not value and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((key["AttributeName"], key["KeyType"]) for key in schema)


def test_tables_have_the_key_schemas_the_template_declares(stack: Stack) -> None:
    # Given the tables template.yaml declares
    declared = load_template().resources("AWS::DynamoDB::Table")
    dynamodb = stack.aws.client("dynamodb")

    for logical_id, resource in declared.items():
        props = properties(resource)
        # When the stack's table of that logical ID is described
        name = stack.resources.tables[logical_id]
        table = dynamodb.describe_table(TableName=name)["Table"]

        # Then its keys, indexes and billing are the template's
        assert _keys(table["KeySchema"]) == _keys(props["KeySchema"])
        assert {
            index["IndexName"]: _keys(index["KeySchema"])
            for index in table.get("GlobalSecondaryIndexes", [])
        } == {
            index["IndexName"]: _keys(index["KeySchema"])
            for index in props.get("GlobalSecondaryIndexes", [])
        }
        assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"]
    # And the names are those the functions' settings give
    assert stack.resources.tables["PlansTable"] == stack.settings.plans_table
    assert stack.resources.tables["LocksTable"] == stack.settings.locks_table


def test_buckets_schedule_group_queue_and_secret_exist(stack: Stack) -> None:
    # Given a started stack
    s3 = stack.aws.client("s3")

    # Then every bucket it made, the remote one included, exists and is versioned
    assert "pdb-remote" in stack.resources.buckets
    for bucket in stack.resources.buckets:
        assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
    # And the schedule group and the schedules' dead-letter queue exist
    group = stack.aws.client("scheduler").get_schedule_group(Name=stack.settings.schedule_group)
    assert group["State"] == "ACTIVE"
    queue_name = stack.settings.schedule_dlq_arn.rsplit(":", 1)[-1]
    assert stack.aws.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
    # And the database secret is in the RDS secret format
    secret = stack.aws.client("secretsmanager").get_secret_value(
        SecretId=stack.settings.db_secret_arn
    )
    assert json.loads(secret["SecretString"]) == {
        "engine": "mariadb",
        "host": "127.0.0.1",
        "port": 3306,
        "username": "root",
        "password": "",
    }


def test_synchronous_invoke_runs_the_handler_file(stack: Stack) -> None:
    # Given a function registered with a handler file
    lambda_ = stack.aws.client("lambda")

    # When it is invoked through Lambda at the embedded AWS
    response = lambda_.invoke(FunctionName="echo", Payload=json.dumps({"n": 1}))

    # Then the handler ran, with a Lambda-like context, and its result is the payload
    result = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert result["event"] == {"n": 1}
    assert result["functionName"] == "echo"
    # And the time it has is the template's timeout for its function (RetentionFunction: 300 s)
    assert 290_000 < result["remainingMillis"] <= 300_000


def test_a_handler_exception_is_an_unhandled_function_error(stack: Stack) -> None:
    # When the handler raises
    response = stack.aws.client("lambda").invoke(
        FunctionName="echo", Payload=json.dumps({"fail": "disk on fire"})
    )

    # Then Lambda's error shape comes back
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "disk on fire"


def test_a_function_without_its_handler_file_fails_with_the_path(stack: Stack) -> None:
    # When a function whose file does not exist is invoked
    response = stack.aws.client("lambda").invoke(FunctionName="missing", Payload=b"{}")

    # Then the error names the missing file
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert "gone/app.py" in error["errorMessage"]


def test_asynchronous_invoke_is_accepted_and_runs_in_the_background(
    stack: Stack, tmp_path: Path
) -> None:
    # Given an event that names where the handler writes what it received
    outbox = tmp_path / "outbox.jsonl"

    # When it is invoked with InvocationType Event
    response = stack.aws.client("lambda").invoke(
        FunctionName="echo", InvocationType="Event", Payload=json.dumps({"outbox": str(outbox)})
    )

    # Then Lambda's 202 comes back and the handler receives the event
    assert response["StatusCode"] == 202
    assert _poll(lambda: _lines(outbox)) == [{"outbox": str(outbox)}]


def test_a_failed_asynchronous_invocation_lands_on_the_on_failure_queue(stack: Stack) -> None:
    # Given the executor, whose template sends failed asynchronous invocations to a queue
    sqs = stack.aws.client("sqs")
    queue_url = sqs.get_queue_url(QueueName="pdb-executor-failure-queue")["QueueUrl"]

    # When an asynchronous invocation of it fails
    stack.aws.client("lambda").invoke(
        FunctionName="pdb-executor", InvocationType="Event", Payload=json.dumps({"fail": "no disk"})
    )

    # Then Lambda's invocation record of the failure is on the queue
    def receive() -> Any:
        return sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages")

    messages = _poll(receive)
    record = json.loads(messages[0]["Body"])
    assert record["requestPayload"] == {"fail": "no disk"}
    assert record["responsePayload"]["errorMessage"] == "no disk"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["functionArn"].endswith(":function:pdb-executor:$LATEST")


def _request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_gateway_sends_the_rest_api_proxy_event(stack: Stack) -> None:
    # When a request reaches the local API
    status, headers, body = _request(
        f"{stack.api_url}/v1/plans/p%2B1/pause?limit=2&tag=a&tag=b",
        method="POST",
        body=b'{"reason": "maintenance"}',
        headers={"Content-Type": "application/json", "X-Trace": "t-1"},
    )

    # Then the API function received the event API Gateway's REST API would send
    assert status == 200
    event = json.loads(body)
    assert event["httpMethod"] == "POST"
    assert event["path"] == "/v1/plans/p%2B1/pause"
    assert event["resource"] == "/v1/{proxy+}"
    assert event["pathParameters"] == {"proxy": "plans/p+1/pause"}
    assert event["queryStringParameters"] == {"limit": "2", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["2"], "tag": ["a", "b"]}
    assert event["headers"]["X-Trace"] == "t-1"
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert event["body"] == '{"reason": "maintenance"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "local"
    assert context["requestId"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userArn"] == "arn:aws:iam::123456789012:user/local-operator"
    # And the function's headers, single and multi-valued, came back
    assert headers["Content-Type"] == "application/json"
    assert headers.get_all("X-Echo") == ["one", "two"]


def test_gateway_passes_a_body_as_text_when_the_api_declares_no_binary_type(stack: Stack) -> None:
    # When the body is not UTF-8, and template.yaml's API declares no binary media type
    status, _, body = _request(f"{stack.api_url}/v1/blobs", method="PUT", body=b"\xff\x00\xfe")

    # Then the event carries it as text, as API Gateway does
    event = json.loads(body)
    assert status == 200
    assert event["isBase64Encoded"] is False
    assert event["body"] == "\ufffd\x00\ufffd"
    assert event["queryStringParameters"] is None


def test_a_body_of_a_binary_media_type_is_base64() -> None:
    # When the Content-Type is one of the API's binary media types
    event = build_event(
        "PUT",
        "/v1/blobs",
        [("Content-Type", "image/png; charset=binary")],
        b"\xff\x00\xfe",
        "127.0.0.1",
        binary_media_types=("image/*",),
    )

    # Then the event carries the body base64-encoded
    assert event["isBase64Encoded"] is True
    assert event["body"] == "/wD+"


def test_gateway_refuses_a_method_outside_any(stack: Stack) -> None:
    # When the method is none of those API Gateway's ANY covers
    status, headers, _ = _request(f"{stack.api_url}/v1/storages", method="TRACE")

    # Then it is refused with the methods that are allowed
    assert status == 405
    assert "GET" in headers["Allow"]


def test_gateway_refuses_a_path_outside_the_api(stack: Stack) -> None:
    # When the path matches no resource of the API
    status, _, body = _request(f"{stack.api_url}/admin")

    # Then API Gateway's answer comes back, and no function ran
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}


def _create_schedule(stack: Stack, name: str, expression: str, outbox: Path, **extra: Any) -> None:
    echo_arn = "arn:aws:lambda:us-east-1:123456789012:function:echo"
    stack.aws.client("scheduler").create_schedule(
        Name=name,
        GroupName=stack.settings.schedule_group,
        ScheduleExpression=expression,
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": echo_arn,
            "RoleArn": stack.settings.scheduler_role_arn,
            "Input": json.dumps(
                {"outbox": str(outbox), "scheduledTime": "<aws.scheduler.scheduled-time>"}
            ),
        },
        **extra,
    )


def _fired(outbox: Path, count: int) -> list[str]:
    """The scheduled times the target received, once ``count`` arrived (or the deadline)."""
    _poll(lambda: len(_lines(outbox)) >= count)
    return [event["scheduledTime"] for event in _lines(outbox)]


@pytest.fixture
def schedules_removed(stack: Stack) -> Iterator[None]:
    """Schedules of one test must not fire into the next while its clock moves on."""
    yield
    scheduler = stack.aws.client("scheduler")
    for schedule in scheduler.list_schedules()["Schedules"]:
        scheduler.delete_schedule(Name=schedule["Name"], GroupName=schedule["GroupName"])


def test_a_schedule_fires_at_its_due_times_once_each(
    stack: Stack, clock: FakeClock, tmp_path: Path, schedules_removed: None
) -> None:
    # Given a daily schedule at 10:00 in Kolkata (04:30 UTC), seen by the loop before it is due
    outbox = tmp_path / "daily.jsonl"
    clock.set(datetime(2031, 3, 4, 4, 29, 30, tzinfo=UTC))
    _create_schedule(
        stack,
        "daily",
        "cron(0 10 * * ? *)",
        outbox,
        ScheduleExpressionTimezone="Asia/Kolkata",
    )
    stack.schedules.tick()

    # When its time comes, and the loop keeps going past it
    clock.set(datetime(2031, 3, 4, 4, 30, 2, tzinfo=UTC))
    stack.schedules.tick()
    clock.set(datetime(2031, 3, 4, 4, 45, tzinfo=UTC))
    stack.schedules.tick()
    # And the next day's time comes
    clock.set(datetime(2031, 3, 5, 4, 30, 1, tzinfo=UTC))
    stack.schedules.tick()

    # Then the target received each due time once, with the scheduled time filled in
    assert _fired(outbox, 2) == ["2031-03-04T04:30:00Z", "2031-03-05T04:30:00Z"]


def test_a_new_schedule_never_fires_for_times_already_past(
    stack: Stack, clock: FakeClock, tmp_path: Path, schedules_removed: None
) -> None:
    # Given an hourly schedule first seen at 10:20, after its 10:00 time
    outbox = tmp_path / "hourly.jsonl"
    clock.set(datetime(2031, 3, 6, 10, 20, tzinfo=UTC))
    _create_schedule(stack, "hourly", "cron(0 * * * ? *)", outbox)
    stack.schedules.tick()

    # When the next hour comes
    clock.set(datetime(2031, 3, 6, 11, 0, 1, tzinfo=UTC))
    stack.schedules.tick()

    # Then only 11:00 fired
    assert _fired(outbox, 1) == ["2031-03-06T11:00:00Z"]


def test_start_date_and_disabled_state_hold_a_schedule_back(
    stack: Stack, clock: FakeClock, tmp_path: Path, schedules_removed: None
) -> None:
    # Given an hourly schedule that starts at 12:00, seen at 10:30
    outbox = tmp_path / "later.jsonl"
    clock.set(datetime(2031, 3, 7, 10, 30, tzinfo=UTC))
    _create_schedule(
        stack,
        "later",
        "cron(0 * * * ? *)",
        outbox,
        StartDate=datetime(2031, 3, 7, 12, 0, tzinfo=UTC),
    )
    stack.schedules.tick()
    scheduler = stack.aws.client("scheduler")

    # When 11:00 passes before the start, 12:00 comes, then the schedule is disabled for 13:00
    for hour in (11, 12):
        clock.set(datetime(2031, 3, 7, hour, 0, 1, tzinfo=UTC))
        stack.schedules.tick()
    schedule = scheduler.get_schedule(Name="later", GroupName=stack.settings.schedule_group)
    scheduler.update_schedule(
        Name="later",
        GroupName=stack.settings.schedule_group,
        ScheduleExpression=schedule["ScheduleExpression"],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=schedule["Target"],
        State="DISABLED",
    )
    clock.set(datetime(2031, 3, 7, 13, 0, 1, tzinfo=UTC))
    stack.schedules.tick()
    # And a marker fires after all of it, so a late stray invocation would show up before it
    clock.set(datetime(2031, 3, 7, 13, 59, 59, tzinfo=UTC))
    _create_schedule(stack, "marker", "cron(0 14 * * ? *)", outbox)
    stack.schedules.tick()
    clock.set(datetime(2031, 3, 7, 14, 0, 1, tzinfo=UTC))
    stack.schedules.tick()

    # Then only 12:00 fired from it
    assert _fired(outbox, 2) == ["2031-03-07T12:00:00Z", "2031-03-07T14:00:00Z"]


def test_the_loop_fires_on_its_own(
    stack: Stack, clock: FakeClock, tmp_path: Path, schedules_removed: None
) -> None:
    # Given a schedule created shortly before its time, and no manual tick
    outbox = tmp_path / "own.jsonl"
    clock.set(datetime(2031, 3, 8, 8, 59, 50, tzinfo=UTC))
    _create_schedule(stack, "own", "cron(0 9 * * ? *)", outbox)

    # When the clock passes its time by less than the loop's interval (so the time is due
    # whether the loop's thread saw the schedule before it or only now)
    clock.set(datetime(2031, 3, 8, 9, 0, tzinfo=UTC) + timedelta(milliseconds=500))

    # Then the loop's own thread fires it
    assert _fired(outbox, 1) == ["2031-03-08T09:00:00Z"]


def test_the_template_rule_delivers_matching_events_to_its_function(
    stack: Stack, tmp_path: Path
) -> None:
    # Given the retention function's EventBridge rule from the template
    assert "pdb-retention-BackupSucceeded" in stack.resources.rules
    outbox = tmp_path / "events.jsonl"
    events = stack.aws.client("events")

    # When an event it matches is put on the bus, and one it does not match
    for detail_type in ("Backup Failed", "Backup Succeeded"):
        events.put_events(
            Entries=[
                {
                    "Source": "platform-backup",
                    "DetailType": detail_type,
                    "Detail": json.dumps({"outbox": str(outbox)}),
                }
            ]
        )

    # Then the function receives the matching one, as EventBridge sends it
    received = _poll(lambda: _lines(outbox))
    assert [event["detail-type"] for event in received] == ["Backup Succeeded"]
    assert received[0]["source"] == "platform-backup"
    assert received[0]["time"].endswith("Z")


def test_a_scheduled_rule_fires_its_target(
    stack: Stack, clock: FakeClock, tmp_path: Path, schedules_removed: None
) -> None:
    # Given a rule every 5 minutes whose target input names an outbox, first seen at 12:00
    outbox = tmp_path / "rule.jsonl"
    events = stack.aws.client("events")
    clock.set(datetime(2031, 3, 9, 12, 0, tzinfo=UTC))
    events.put_rule(Name="every-5", ScheduleExpression="rate(5 minutes)")
    events.put_targets(
        Rule="every-5",
        Targets=[
            {
                "Id": "echo",
                "Arn": "arn:aws:lambda:us-east-1:123456789012:function:echo",
                "Input": json.dumps({"outbox": str(outbox), "tick": "rate"}),
            }
        ],
    )
    stack.schedules.tick()

    # When 11 minutes pass
    clock.set(datetime(2031, 3, 9, 12, 11, tzinfo=UTC))
    stack.schedules.tick()

    # Then it fired twice (12:05 and 12:10) with the target's input
    _poll(lambda: len(_lines(outbox)) >= 2)
    assert _lines(outbox) == [{"outbox": str(outbox), "tick": "rate"}] * 2
    events.remove_targets(Rule="every-5", Ids=["echo"])
    events.delete_rule(Name="every-5")


def test_step_functions_run_tasks_through_the_invoker(stack: Stack) -> None:
    # Given a state machine whose task invokes a function, as the restore workflow's do
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:echo",
                    "Payload": {"step": "validate", "restoreId.$": "$.restoreId"},
                },
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    sfn = stack.aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="echo-workflow",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/pdb-local",
    )

    # When it is executed on moto's engine
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], input=json.dumps({"restoreId": "r-1"})
    )

    # Then the task ran the handler in-process and the execution succeeded with its result
    def finished() -> Any:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        return described if described["status"] != "RUNNING" else None

    described = _poll(finished)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["event"] == {"step": "validate", "restoreId": "r-1"}


def test_the_restore_workflow_is_created_from_its_definition_file(stack: Stack) -> None:
    # Given the template's restore state machine
    name = stack.settings.restore_state_machine_arn.rsplit(":", 1)[-1]
    sfn = stack.aws.client("stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    arn = next(machine["stateMachineArn"] for machine in machines if machine["name"] == name)

    # When its definition is read back
    definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]

    # Then every substitution became the local restore function's ARN
    assert "${" not in definition
    assert "arn:aws:lambda:us-east-1:123456789012:function:pdb-restore" in definition


def _probe(stack: Stack, function: str, **event: Any) -> Any:
    response = stack.aws.client("lambda", read_timeout=120, attempts=1).invoke(
        FunctionName=function, Payload=json.dumps({"probe": [], **event})
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_a_function_has_its_template_environment_only(stack: Stack) -> None:
    # When a function declared as the template's retention function reads its environment
    names = [
        "POWERTOOLS_SERVICE_NAME",
        "STORAGES_TABLE",
        "DB_SECRET_ARN",
        "AWS_LAMBDA_FUNCTION_NAME",
    ]
    error, result = _probe(stack, "pdb-retention", probe=names)
    # Then it has the template's variables (its own, the globals) with the local values
    assert error is None, result
    env = result["env"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "retention"
    assert env["STORAGES_TABLE"] == stack.settings.storages_table
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "pdb-retention"
    # And not another function's settings (the executor's database secret)
    assert env["DB_SECRET_ARN"] is None


def test_a_warm_worker_is_reused_and_keeps_its_tmp(stack: Stack) -> None:
    # Given a function invoked once (its worker leaves a file in its TMPDIR)
    _, first = _probe(stack, "pdb-retention")
    # When it is invoked again
    _, second = _probe(stack, "pdb-retention")
    # Then the same worker ran it, and the file is still there
    assert second["pid"] == first["pid"]
    assert second["found"] is True


def test_a_function_is_killed_at_its_timeout_as_lambda_reports_it(stack: Stack) -> None:
    # Given a function whose timeout is 2 s, warm
    _, warm = _probe(stack, "sleepy")
    # When an invocation runs longer
    error, result = _probe(stack, "sleepy", sleep=60)
    # Then it fails as Lambda's timeout does
    assert error == "Unhandled"
    assert result["errorType"] == "Sandbox.Timedout"
    assert result["errorMessage"].endswith("Task timed out after 2.00 seconds")
    # And its worker is gone: the next invocation runs in a new one, with the same TMPDIR
    _, after = _probe(stack, "sleepy")
    assert after["pid"] != warm["pid"]
    assert after["found"] is True
    with pytest.raises(ProcessLookupError):
        os.kill(warm["pid"], 0)


def test_a_killed_worker_fails_its_invocation_as_lambda_reports_it(stack: Stack) -> None:
    # Given an invocation running in its worker
    outcome: list[Any] = []
    running = threading.Thread(
        target=lambda: outcome.append(_probe(stack, "echo", sleep=60)), daemon=True
    )
    running.start()
    pids = _poll(lambda: stack.invoker.busy_worker_pids("echo"))
    # When the worker is killed
    os.kill(pids[0], signal.SIGKILL)
    running.join()
    # Then the invocation failed as Lambda reports a runtime that died
    [(error, result)] = outcome
    assert error == "Unhandled"
    assert result["errorType"] == "Runtime.ExitError"
    assert result["errorMessage"].endswith("Runtime exited with error: signal: killed")
    # And the function still runs, in a new worker
    error, after = _probe(stack, "echo")
    assert error is None and after["pid"] != pids[0]


def test_a_failed_asynchronous_invocation_is_retried_as_lambda_does(
    stack: Stack, tmp_path: Path
) -> None:
    # Given the retention function, for which the template configures no retries (Lambda's
    # default: two), with Lambda's waits between them shortened
    stack.invoker.retry_delays = (0.1, 0.1)
    outbox = tmp_path / "received.jsonl"
    try:
        # When an asynchronous invocation of it fails every time
        stack.aws.client("lambda").invoke(
            FunctionName="pdb-retention",
            InvocationType="Event",
            Payload=json.dumps({"fail": "still broken", "outbox": str(outbox)}),
        )
        # Then it ran three times: the first and two retries
        assert len(_poll(lambda: len(_lines(outbox)) == 3 and _lines(outbox))) == 3
    finally:
        stack.invoker.retry_delays = RETRY_DELAYS_SECONDS


def _call(stack: Stack, function: str, service: str, operation: str, **params: Any) -> Any:
    response = stack.aws.client("lambda", read_timeout=120, attempts=1).invoke(
        FunctionName=function, Payload=json.dumps({"call": [service, operation, params]})
    )
    return json.loads(response["Payload"].read())["error"]


def test_a_function_calls_aws_as_its_template_role(stack: Stack) -> None:
    # Given the retention function (its role: CRUD on the backups table, read on the plans
    # table, deletes of backup objects; no database secret, no writes to buckets)
    settings = stack.settings
    key = {"id": {"S": "b-none"}}
    table = settings.backups_table
    stack.aws.client("s3").put_object(Bucket="pdb-primary", Key="iam/probe", Body=b"x")
    # When it makes calls its role grants, they succeed (moto checks S3, the recorded-calls
    # check the rest)
    assert _call(stack, "pdb-retention", "dynamodb", "scan", TableName=table) is None
    assert (
        _call(stack, "pdb-retention", "s3", "delete_object", Bucket="pdb-primary", Key="iam/probe")
        is None
    )
    # And calls it does not grant are refused as AWS refuses them
    plans = settings.plans_table
    item = {"id": {"S": "p-iam"}}
    assert (
        _call(stack, "pdb-retention", "dynamodb", "put_item", TableName=plans, Item=item)
        == "AccessDeniedException"
    )
    assert (
        _call(
            stack,
            "pdb-retention",
            "secretsmanager",
            "get_secret_value",
            SecretId=settings.db_secret_arn,
        )
        == "AccessDeniedException"
    )
    assert (
        _call(
            stack,
            "pdb-retention",
            "s3",
            "put_object",
            Bucket="pdb-primary",
            Key="iam/other",
            Body="x",
        )
        == "AccessDenied"
    )
    # And nothing was written
    assert "Item" not in stack.aws.client("dynamodb").get_item(TableName=plans, Key=item)
    # And the refused calls are recorded under the function, with their resources
    refused = {(call.function, call.action) for call in stack.iam.take_ungranted()}
    assert refused == {
        ("pdb-retention", "dynamodb:PutItem"),
        ("pdb-retention", "secretsmanager:GetSecretValue"),
        ("pdb-retention", "s3:PutObject"),
    }
    assert _call(stack, "pdb-retention", "dynamodb", "get_item", TableName=table, Key=key) is None


def test_a_function_outside_the_template_calls_as_the_stack(stack: Stack) -> None:
    # A test's own function (no role in the template) signs with the stack's credentials
    assert (
        _call(stack, "outsider", "dynamodb", "scan", TableName=stack.settings.plans_table) is None
    )
    assert stack.iam.ungranted() == []


def test_no_worker_starts_once_the_workers_were_stopped(tmp_path: Path) -> None:
    # Given an invoker whose function ran in a worker
    (tmp_path / "echo").mkdir()
    (tmp_path / "echo" / "app.py").write_text(ECHO_HANDLER)
    spec = FunctionSpec(name="echo", source=tmp_path / "echo" / "app.py")
    invoker = Invoker({"echo": spec}, region="us-east-1", workers=True)
    first = json.loads(invoker.invoke("echo", {"probe": []}).payload)
    # When its workers are stopped (the stack stopping) and an invocation still comes (an
    # asynchronous one on its way)
    invoker.stop_workers()
    late = invoker.invoke("echo", {"probe": []})
    # Then it is refused, saying why, and no worker is left running: neither the old nor a new
    assert late.function_error == "Unhandled"
    assert "the local stack has stopped" in json.loads(late.payload)["errorMessage"]
    with pytest.raises(ProcessLookupError):
        os.kill(first["pid"], 0)
    assert invoker.busy_worker_pids("echo") == []

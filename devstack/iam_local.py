"""IAM enforced in the embedded AWS: each function calls it as its own role, with the template's
policies (devstack.iam_policies), and a call the role does not grant is refused and recorded.

Each function gets a role in the embedded IAM holding its resolved statements, and its workers get
temporary credentials of that role (STS AssumeRole). Every request signed with such credentials
is checked where moto checks authorization (ActionAuthenticatorMixin):
- S3: by moto's own policy engine (it names the object or bucket ARN as the resource);
- every other service: by devstack.iam_eval against the resource this module reads from the
  request (moto names none: a DynamoDB GetItem granted on the table's ARN would be refused).
Either way the call is recorded (function, action, resource, granted); a refused call answers
AccessDenied as AWS does. Requests signed otherwise (the stack itself, a test's own clients)
are not checked, as an administrator's are not.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError

from devstack.iam_eval import Call, is_allowed
from devstack.iam_policies import Statements

log = logging.getLogger("devstack.iam")

ACCOUNT_ID = "123456789012"
# Operation names whose IAM action is named otherwise.
_IAM_ACTIONS = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeAsync": "lambda:InvokeFunction",
}
# The signing name of a service where its IAM prefix differs.
_IAM_PREFIX = {"monitoring": "cloudwatch"}
# Moto's names for S3 requests whose IAM action AWS names otherwise (HeadBucket needs ListBucket).
_S3_ACTIONS = {"HeadBucket": "ListBucket"}
# Services whose errors are JSON: AWS names the refusal AccessDeniedException there.
_JSON_SERVICES = {"dynamodb", "secretsmanager", "states", "events", "lambda", "scheduler", "sqs"}
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


@dataclass(frozen=True)
class RecordedCall:
    function: str
    action: str
    resource: str
    granted: bool

    def __str__(self) -> str:
        verdict = "granted" if self.granted else "NOT GRANTED"
        return f"{self.function}: {self.action} on {self.resource} ({verdict})"


class LocalIam:
    """The functions' roles and credentials, and the record of their calls."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._roles: dict[str, Statements] = {}  # role name -> statements
        self._by_key: dict[str, tuple[str, str]] = {}  # access key id -> function, role
        self._credentials: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.calls: list[RecordedCall] = []

    def add_role(self, aws: Any, role_name: str, statements: Statements) -> None:
        """Creates a role in the embedded IAM holding the statements."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam = aws.client("iam")
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        # One document of every policy the role holds: their Sids may repeat across them.
        unnamed = [{k: v for k, v in statement.items() if k != "Sid"} for statement in statements]
        document = {"Version": "2012-10-17", "Statement": unnamed or _NOTHING}
        iam.put_role_policy(
            RoleName=role_name, PolicyName="template", PolicyDocument=json.dumps(document)
        )
        self._roles[role_name] = statements

    def assume(self, aws: Any, function: str, role_name: str) -> None:
        """Temporary credentials of the role for the function's workers (as Lambda gives)."""
        role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{role_name}"
        assumed = aws.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=function, DurationSeconds=43200
        )["Credentials"]
        self._by_key[assumed["AccessKeyId"]] = (function, role_name)
        self._credentials[function] = {
            "AWS_ACCESS_KEY_ID": assumed["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": assumed["SecretAccessKey"],
            "AWS_SESSION_TOKEN": assumed["SessionToken"],
        }

    def credentials(self, function: str) -> Mapping[str, str]:
        """The environment a worker of the function signs with (empty: the stack's own)."""
        return self._credentials.get(function, {})

    def ungranted(self) -> list[RecordedCall]:
        with self._lock:
            return [call for call in self.calls if not call.granted]

    def take_ungranted(self) -> list[RecordedCall]:
        """The refused calls, forgotten: a test that made them on purpose takes them."""
        with self._lock:
            taken = [call for call in self.calls if not call.granted]
            self.calls = [call for call in self.calls if call.granted]
            return taken

    def caller(self, access_key: str) -> tuple[str, str] | None:
        """The function and role a request's access key belongs to, if a function's."""
        return self._by_key.get(access_key)

    def check(self, caller: tuple[str, str], call: Call) -> bool:
        function, role_name = caller
        granted = is_allowed(self._roles.get(role_name, []), call)
        recorded = RecordedCall(function, call.action, call.resource, granted)
        with self._lock:
            if recorded not in self.calls:
                self.calls.append(recorded)
        if not granted:
            log.error("ungranted call: %s", recorded)
        return granted


_NOTHING = [{"Effect": "Deny", "Action": "*", "Resource": "*"}]
_ACTIVE: LocalIam | None = None
_ORIGINAL = ActionAuthenticatorMixin._authenticate_and_authorize_action


def install(local_iam: LocalIam) -> None:
    global _ACTIVE
    _ACTIVE = local_iam
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    global _ACTIVE
    _ACTIVE = None
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _ORIGINAL  # type: ignore[method-assign]


def _credential_scope(headers: Any) -> tuple[str, str] | None:
    authorization = headers.get("Authorization") or ""
    marker = "Credential="
    if marker not in authorization:
        return None
    scope = authorization.split(marker, 1)[1].split(",", 1)[0].split("/")
    return (scope[0], scope[3]) if len(scope) >= 4 else None


def _authorize(response: Any, iam_request_cls: type, resource: str = "*") -> None:
    active = _ACTIVE
    scope = _credential_scope(response.headers)
    caller = active.caller(scope[0]) if active is not None and scope else None
    if active is None or scope is None or caller is None:
        _ORIGINAL(response, iam_request_cls, resource)
        return
    service = _IAM_PREFIX.get(scope[1], scope[1])
    operation = response._get_action()
    if service == "s3" and _is_multi_delete(response):
        # Moto names the bucket; AWS checks a delete of each object (of each version named).
        calls = _multi_delete_calls(response, resource)
        granted = all([active.check(caller, call) for call in calls])
        if not granted:
            _moto_check(response, iam_request_cls, resource, "DeleteObject")
        return
    if service == "s3":
        operation = _S3_ACTIONS.get(operation, operation)
        active.check(caller, Call(f"s3:{operation}", resource))
        source = _copy_source(response)
        if source is not None and not active.check(caller, source):
            _moto_check(response, iam_request_cls, source.resource, source.action[3:])
        # Moto's own policy engine decides, with the role the credentials belong to.
        _moto_check(response, iam_request_cls, resource, operation)
        return
    action = f"{service}:{operation}"
    action = _IAM_ACTIONS.get(action, action)
    granted = True
    for call in calls_of(response, service, operation, action, active.region):
        granted = active.check(caller, call) and granted
    if not granted:
        function, role_name = caller
        user = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/{function}"
        if service in _JSON_SERVICES:
            message = f"User: {user} is not authorized to perform: {action}"
            error = JsonRESTError("AccessDeniedException", message)
            error.code = 403 if service in ("lambda", "scheduler") else 400
            raise error
        raise AccessDeniedError(user_arn=user, action=action)


def _is_multi_delete(response: Any) -> bool:
    query = parse_qs(urlsplit(response.uri).query, keep_blank_values=True)
    return response.method == "POST" and "delete" in query


def _multi_delete_calls(response: Any, bucket_arn: str) -> list[Call]:
    body = response.raw_body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    calls = []
    for element in re.findall(r"<Object>(.*?)</Object>", text, re.DOTALL):
        key = re.search(r"<Key>(.*?)</Key>", element, re.DOTALL)
        action = "s3:DeleteObjectVersion" if "<VersionId>" in element else "s3:DeleteObject"
        name = html.unescape(key.group(1)) if key else ""
        calls.append(Call(action, f"{bucket_arn}/{name}"))
    return calls


def _copy_source(response: Any) -> Call | None:
    """A server-side copy reads its source: s3:GetObject (or GetObjectVersion) on it."""
    source = response.headers.get("x-amz-copy-source")
    if not source:
        return None
    path, _, query = unquote(source).lstrip("/").partition("?")
    action = "s3:GetObjectVersion" if "versionId=" in query else "s3:GetObject"
    return Call(action, f"arn:aws:s3:::{path}")


def _moto_check(response: Any, iam_request_cls: type, resource: str, operation: str) -> None:
    parsed = urlsplit(response.uri)
    path = response.raw_path + (f"?{parsed.query}" if parsed.query else "")
    request = iam_request_cls(
        account_id=response.current_account,
        method=response.method,
        path=path,
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action=operation,
    )
    request.check_action_permitted(resource)


def _body(response: Any) -> dict[str, Any]:
    body = response.body
    if isinstance(body, dict):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def calls_of(response: Any, service: str, operation: str, action: str, region: str) -> list[Call]:
    """The IAM calls one request makes: action, resource ARN and the condition keys known."""
    body = _body(response)
    if service == "dynamodb":
        return _dynamodb_calls(body, operation, region)
    if service == "secretsmanager":
        return [Call(action, _secret_arn(str(body.get("SecretId", "")), region))]
    if service == "states":
        target = body.get("stateMachineArn") or body.get("executionArn") or "*"
        return [Call(action, str(target))]
    if service == "events":
        bus = "default"
        sources = tuple(str(entry.get("Source")) for entry in body.get("Entries") or [])
        buses = {str(entry.get("EventBusName") or bus) for entry in body.get("Entries") or []}
        context = {"events:source": sources}
        return [
            Call(action, _arn("events", region, f"event-bus/{name}"), context) for name in buses
        ]
    if service == "lambda":
        name = unquote(str((getattr(response, "uri_match", None) or {}).get("FunctionName", "")))
        arn = name if name.startswith("arn:") else _arn("lambda", region, f"function:{name}")
        return [Call(action, arn)]
    if service == "scheduler":
        return _scheduler_calls(response, body, operation, action, region)
    if service == "cloudwatch":
        namespace = body.get("Namespace") or _query(response, "Namespace")
        context = {"cloudwatch:namespace": (str(namespace),)} if namespace else {}
        return [Call(action, "*", context)]
    if service == "sqs":
        url = str(body.get("QueueUrl") or _query(response, "QueueUrl") or "")
        name = url.rstrip("/").rsplit("/", 1)[-1]
        return [Call(action, _arn("sqs", region, name) if name else "*")]
    return [Call(action, "*")]


def _query(response: Any, name: str) -> str | None:
    values = parse_qs(urlsplit(response.uri).query).get(name) or response.querystring.get(name)
    return str(values[0]) if values else None


def _table_arn(region: str, table: str, index: str | None = None) -> str:
    return _arn("dynamodb", region, f"table/{table}" + (f"/index/{index}" if index else ""))


def _dynamodb_calls(body: Mapping[str, Any], operation: str, region: str) -> list[Call]:
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [
            Call(f"dynamodb:{operation}", _table_arn(region, str(table)))
            for table in body.get("RequestItems") or {}
        ]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        calls = []
        for item in body.get("TransactItems") or []:
            for kind, request in item.items():
                name = _TRANSACT.get(kind, "GetItem" if kind == "Get" else "ConditionCheckItem")
                calls.append(Call(f"dynamodb:{name}", _table_arn(region, request["TableName"])))
        return calls
    table = str(body.get("TableName", "*"))
    index = body.get("IndexName")
    return [Call(f"dynamodb:{operation}", _table_arn(region, table, index))]


def _secret_arn(secret_id: str, region: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[ACCOUNT_ID][region]
    try:
        return str(backend.describe_secret(secret_id).arn)
    except Exception:  # an unknown secret: the name as its ARN's last part
        return _arn("secretsmanager", region, f"secret:{secret_id}")


def _scheduler_calls(
    response: Any, body: Mapping[str, Any], operation: str, action: str, region: str
) -> list[Call]:
    if operation == "ListSchedules":
        return [Call(action, "*")]
    name = unquote(str((getattr(response, "uri_match", None) or {}).get("Name", "")))
    group = body.get("GroupName") or _query(response, "groupName") or "default"
    calls = [Call(action, _arn("scheduler", region, f"schedule/{group}/{name}"))]
    role = (body.get("Target") or {}).get("RoleArn")
    if role and operation in ("CreateSchedule", "UpdateSchedule"):
        # Handing the schedule a role is passing it: iam:PassRole, to the scheduler service.
        context = {"iam:passedtoservice": ("scheduler.amazonaws.com",)}
        calls.append(Call("iam:PassRole", str(role), context))
    return calls

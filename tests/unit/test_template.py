"""What template.yaml promises whoever deploys it: signed requests only, private encrypted backups,
recoverable records, settings the code can read, alarms that watch what the code publishes, and a
failed backup that is never silently re-run.

Checks read the template as written; the route check reads what SAM turns it into, since that is
what API Gateway receives.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from devstack.template import REPO_ROOT, Template, load_template, properties
from platform_backup.observability import NAMESPACE
from platform_backup.settings import (
    ApiSettings,
    ArchiverSettings,
    CommonSettings,
    ExecutorSettings,
    MonitorSettings,
    RestoreSettings,
    RetentionSettings,
    SchedulerSettings,
    Settings,
    variables,
)

FUNCTION = "AWS::Serverless::Function"
# Read by the powertools library itself, not by our settings.
LIBRARY_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _get_att_id(value: Any) -> str | None:
    return value["Fn::GetAtt"][0] if isinstance(value, dict) and "Fn::GetAtt" in value else None


def _resource_type(template: Template, logical_id: str | None) -> str | None:
    resource = (template.body["Resources"]).get(logical_id or "") or {}
    return resource.get("Type")


def _translated(template: Template) -> dict[str, Any]:
    """The CloudFormation SAM produces, with local code locations swapped for placeholders
    (the translator wants S3 and ECR addresses, which only `sam deploy` knows)."""
    body = copy.deepcopy(template.body)
    for resource in body["Resources"].values():
        props = resource.get("Properties") or {}
        if resource["Type"] == FUNCTION:
            if props.get("PackageType") == "Image":
                props["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pdb:latest"
            else:
                props["CodeUri"] = "s3://placeholder/code.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://placeholder/layer.zip"
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            props["DefinitionUri"] = "s3://placeholder/definition.json"

    class _NoManagedPolicyNames:
        def load(self) -> dict[str, str]:
            return {}

    translated: dict[str, Any] = transform(
        body, {"AWS::Region": "us-east-1"}, _NoManagedPolicyNames()
    )
    return translated


def test_every_route_requires_a_sigv4_signature(template: Template) -> None:
    # Given the template as SAM hands it to CloudFormation
    translated = _translated(template)

    # When we collect every method of every REST API
    apis = {
        rid: res
        for rid, res in translated["Resources"].items()
        if res["Type"] == "AWS::ApiGateway::RestApi"
    }
    methods = [
        (path, verb, method)
        for api in apis.values()
        for path, verbs in api["Properties"]["Body"]["paths"].items()
        for verb, method in verbs.items()
    ]

    # Then there are routes, and each one demands AWS_IAM and lets API Gateway call the function
    # itself (no caller credentials passed through, which would need lambda:InvokeFunction).
    assert apis, "template.yaml declares no REST API"
    assert any(path.startswith("/v1/") for path, _, _ in methods)
    for path, verb, method in methods:
        assert method.get("security") == [{"AWS_IAM": []}], f"{verb} {path} is not AWS_IAM"
        integration = method["x-amazon-apigateway-integration"]
        assert "credentials" not in integration, f"{verb} {path} invokes with caller credentials"


def _access_log_buckets(template: Template) -> set[str]:
    return {
        str(_ref(properties(b).get("LoggingConfiguration", {}).get("DestinationBucketName")))
        for b in template.resources("AWS::S3::Bucket").values()
        if properties(b).get("LoggingConfiguration")
    }


def test_every_bucket_is_versioned_private_kms_encrypted_tls_only_and_aborts_uploads(
    template: Template,
) -> None:
    # Given the backup buckets (every bucket but the access logs') and the bucket policies
    logs = _access_log_buckets(template)
    buckets = {k: v for k, v in template.resources("AWS::S3::Bucket").items() if k not in logs}
    policies = [properties(p) for p in template.resources("AWS::S3::BucketPolicy").values()]
    assert buckets, "template.yaml declares no bucket"

    for logical_id, bucket in buckets.items():
        props = properties(bucket)
        # Then each bucket keeps every version of an object
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        # ... is encrypted with a key this stack owns
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        for rule in rules:
            default = rule["ServerSideEncryptionByDefault"]
            assert default["SSEAlgorithm"] == "aws:kms", logical_id
            key = _get_att_id(default.get("KMSMasterKeyID")) or _ref(default.get("KMSMasterKeyID"))
            assert _resource_type(template, key) == "AWS::KMS::Key", logical_id
        # ... refuses every form of public access
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        # ... aborts incomplete multipart uploads everywhere in it
        lifecycle = props["LifecycleConfiguration"]["Rules"]
        assert any(
            r["Status"] == "Enabled"
            and r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation", 0) >= 1
            and not r.get("Prefix")
            and not r.get("Filter")
            for r in lifecycle
        ), logical_id
        # ... and denies any request that is not over TLS, on the bucket and on its objects
        own = [p for p in policies if _ref(p["Bucket"]) == logical_id]
        tls_denials = [
            s
            for p in own
            for s in p["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s["Principal"] == "*"
            and s["Action"] in ("s3:*", ["s3:*"])
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(tls_denials) == 1, logical_id
        resources = json.dumps(tls_denials[0]["Resource"])
        assert f'"{logical_id}", "Arn"' in resources, logical_id
        assert f"${{{logical_id}.Arn}}/*" in resources, logical_id


def test_every_table_is_on_demand_recoverable_and_encrypted(template: Template) -> None:
    tables = template.resources("AWS::DynamoDB::Table")
    assert tables, "template.yaml declares no table"
    for logical_id, table in tables.items():
        props = properties(table)
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        # The records are the catalog of the backups: deleting the stack must not delete them.
        assert table.get("DeletionPolicy") == "Retain", logical_id


def test_every_environment_variable_is_a_setting_the_code_reads(template: Template) -> None:
    # Given the names Settings reads
    aliases = set(variables(Settings))
    common = (template.function_globals().get("Environment") or {}).get("Variables") or {}

    # When we collect what each function is given (globals merged with its own)
    functions = template.resources(FUNCTION)
    assert functions, "template.yaml declares no function"
    for logical_id, function in functions.items():
        own = (properties(function).get("Environment") or {}).get("Variables") or {}
        given = set(common) | set(own)

        # Then a misspelt name, which the code would silently replace by its local default,
        # cannot slip in
        unknown = given - aliases - LIBRARY_VARIABLES
        assert not unknown, f"{logical_id} sets {sorted(unknown)}, which no setting reads"
        # And each function says which service its logs and metrics belong to
        assert "POWERTOOLS_SERVICE_NAME" in own, logical_id


# The settings each function loads at cold start (its composition root).
FUNCTION_SETTINGS: dict[str, type[CommonSettings]] = {
    "ApiFunction": ApiSettings,
    "SchedulerFunction": SchedulerSettings,
    "ExecutorFunction": ExecutorSettings,
    "ArchiverFunction": ArchiverSettings,
    "RetentionFunction": RetentionSettings,
    "RestoreFunction": RestoreSettings,
    "MonitorFunction": MonitorSettings,
}
# Set by the Lambda runtime itself.
RUNTIME_VARIABLES = {"AWS_REGION"}


def test_every_function_is_given_each_setting_it_requires(template: Template) -> None:
    # Given what each function is given (globals merged with its own)
    common = (template.function_globals().get("Environment") or {}).get("Variables") or {}
    functions = template.resources(FUNCTION)
    assert set(functions) == set(FUNCTION_SETTINGS)
    for logical_id, function in functions.items():
        own = (properties(function).get("Environment") or {}).get("Variables") or {}
        given = set(common) | set(own) | RUNTIME_VARIABLES

        # Then every setting without a default is there: deployed, none is missing at cold start
        model = FUNCTION_SETTINGS[logical_id]
        required = {name for name, needed in variables(model).items() if needed}
        assert required <= given, f"{logical_id} lacks {sorted(required - given)}"


def test_the_restore_step_budget_is_the_restore_functions_timeout(template: Template) -> None:
    # A restore is refused up front when it cannot fit this many seconds: it must be the
    # restore function's real Timeout, in the API (at request time) and in Validate alike.
    functions = template.resources(FUNCTION)
    timeout = properties(functions["RestoreFunction"])["Timeout"]
    for logical_id in ("ApiFunction", "RestoreFunction"):
        given = properties(functions[logical_id])["Environment"]["Variables"]
        assert float(given["RESTORE_STEP_SECONDS"]) == float(timeout), logical_id


def test_functions_in_the_vpc_get_the_database_secret_and_names(template: Template) -> None:
    in_vpc = {
        rid: properties(f)
        for rid, f in template.resources(FUNCTION).items()
        if "VpcConfig" in properties(f)
    }
    assert set(in_vpc) >= {"ExecutorFunction", "RestoreFunction", "ArchiverFunction"}
    for logical_id, props in in_vpc.items():
        given = props["Environment"]["Variables"]
        assert _ref(given["DB_SECRET_ARN"]) == "DatabaseSecretArn", logical_id
        # The archiver reads the binary log, which is the server's whole, not some databases'.
        if "PLATFORM_DB_NAMES" in variables(FUNCTION_SETTINGS[logical_id]):
            assert _ref(given["PLATFORM_DB_NAMES"]) == "PlatformDatabaseNames", logical_id


def test_the_restore_applies_as_the_restore_user_or_the_one_secret(template: Template) -> None:
    # Given the restore function's settings and its role's secret grants
    restore = properties(template.resources(FUNCTION)["RestoreFunction"])
    chosen = restore["Environment"]["Variables"]["RESTORE_DB_SECRET_ARN"]
    # Then the restore user's secret is the parameter when given, the dump user's otherwise
    condition, given, fallback = chosen["Fn::If"]
    assert (condition, _ref(given), _ref(fallback)) == (
        "HasRestoreDatabaseSecret",
        "RestoreDatabaseSecretArn",
        "DatabaseSecretArn",
    )
    # And the role may read both (and nothing else but the disaster-recovery targets)
    [statement] = [
        s
        for policy in restore["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for s in policy["Statement"]
        if s.get("Sid") == "DatabaseSecrets"
    ]
    listed = json.dumps(statement["Resource"])
    assert '"Ref": "DatabaseSecretArn"' in listed and '"Ref": "RestoreDatabaseSecretArn"' in listed


def test_alarms_watch_the_namespace_the_code_publishes_to(template: Template) -> None:
    # Given the namespace the powertools Metrics singleton publishes to
    variables = template.function_globals()["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE

    # When we read the backup alarms' queries
    queries = {
        rid: " ".join(m.get("Expression", "") for m in properties(alarm).get("Metrics", []))
        for rid, alarm in template.resources("AWS::CloudWatch::Alarm").items()
    }
    failed = [q for q in queries.values() if "BackupFailed" in q]
    stale = [
        properties(alarm)
        for rid, alarm in template.resources("AWS::CloudWatch::Alarm").items()
        if "StalenessRatio" in queries[rid]
    ]

    # Then both read our namespace, and staleness alarms at 1.5 cycles, silence included
    assert failed and all(f"FROM {NAMESPACE}" in q for q in failed)
    assert len(stale) == 1
    assert f"FROM {NAMESPACE}" in stale[0]["Metrics"][0]["Expression"]
    assert stale[0]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert stale[0]["Threshold"] == 1.5
    assert stale[0]["TreatMissingData"] == "breaching"


def test_every_alarm_notifies_the_encrypted_topic(template: Template) -> None:
    alarms = template.resources("AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        actions = properties(alarm)["AlarmActions"]
        assert actions and all(
            _resource_type(template, _ref(a)) == "AWS::SNS::Topic" for a in actions
        ), logical_id
    for logical_id, topic in template.resources("AWS::SNS::Topic").items():
        key = properties(topic).get("KmsMasterKeyId")
        assert _resource_type(template, _get_att_id(key) or _ref(key)) == "AWS::KMS::Key", (
            logical_id
        )


def test_a_failed_backup_run_is_never_retried_by_lambda(template: Template) -> None:
    # Given the executor, which schedules invoke asynchronously
    executor = properties(template.resources(FUNCTION)["ExecutorFunction"])
    config = executor["EventInvokeConfig"]

    # Then Lambda does not re-run a failed invocation, and keeps the event of one on a queue
    assert config["MaximumRetryAttempts"] == 0
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert _resource_type(template, _get_att_id(on_failure["Destination"])) == "AWS::SQS::Queue"


def test_every_function_and_workflow_logs_to_a_group_with_retention(template: Template) -> None:
    groups = template.resources("AWS::Logs::LogGroup")
    for logical_id, function in template.resources(FUNCTION).items():
        group = _ref((properties(function).get("LoggingConfig") or {}).get("LogGroup"))
        assert group in groups, f"{logical_id} logs to a group the template does not declare"
        assert properties(groups[group])["RetentionInDays"], logical_id
    for logical_id, machine in template.resources("AWS::Serverless::StateMachine").items():
        destinations = properties(machine)["Logging"]["Destinations"]
        group = _get_att_id(destinations[0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
        assert group in groups, logical_id
        assert properties(groups[group])["RetentionInDays"], logical_id


def test_the_restore_workflow_definition_has_every_substitution_it_uses(
    template: Template,
) -> None:
    for logical_id, machine in template.resources("AWS::Serverless::StateMachine").items():
        props = properties(machine)
        text = (REPO_ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
        json.loads(text)
        used = set(re.findall(r"\$\{(\w+)\}", text))
        assert used, f"{logical_id} names no function to run"
        assert used <= set(props.get("DefinitionSubstitutions") or {}), logical_id


def test_storage_and_record_grants_are_scoped_to_resources(template: Template) -> None:
    # Given every IAM statement of the deployed roles and managed policies
    resources = _translated(template)["Resources"]
    documents = [
        policy["PolicyDocument"]
        for res in resources.values()
        if res["Type"] == "AWS::IAM::Role"
        for policy in res["Properties"].get("Policies", [])
    ] + [
        res["Properties"]["PolicyDocument"]
        for res in resources.values()
        if res["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    statements = [s for document in documents for s in document["Statement"]]
    assert statements

    # Then no statement grants data access (S3, DynamoDB, secrets, KMS, invocations) on "*"
    scoped = ("s3:", "dynamodb:", "secretsmanager:", "kms:", "lambda:", "states:", "iam:")
    for statement in statements:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        if any(a.startswith(scoped) for a in actions):
            assert statement["Resource"] not in ("*", ["*"]), statement


def test_backup_buckets_log_access_to_a_private_tls_only_bucket_s3_can_deliver_to(
    template: Template,
) -> None:
    # Given the template's buckets
    buckets = template.resources("AWS::S3::Bucket")
    logs = _access_log_buckets(template)
    # Then every backup bucket logs its access, all to one bucket of the stack
    assert len(logs) == 1 and logs <= set(buckets)
    log_bucket = next(iter(logs))
    for logical_id, bucket in buckets.items():
        if logical_id != log_bucket:
            assert _ref(properties(bucket)["LoggingConfiguration"]["DestinationBucketName"]) == (
                log_bucket
            ), logical_id
    props = properties(buckets[log_bucket])
    # ... which S3 can deliver to: S3-managed encryption, and the logging service allowed
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert [r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules] == ["AES256"]
    assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    statements = [
        s
        for p in template.resources("AWS::S3::BucketPolicy").values()
        if _ref(properties(p)["Bucket"]) == log_bucket
        for s in properties(p)["PolicyDocument"]["Statement"]
    ]
    assert any(s.get("Principal") == {"Service": "logging.s3.amazonaws.com"} for s in statements)
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_every_log_group_is_encrypted_with_the_stacks_key(template: Template) -> None:
    # Given the template's log groups
    groups = template.resources("AWS::Logs::LogGroup")
    assert groups
    for logical_id, group in groups.items():
        # Then each is encrypted with the stack's KMS key, which lets CloudWatch Logs use it
        key = _get_att_id(properties(group).get("KmsKeyId"))
        assert _resource_type(template, key) == "AWS::KMS::Key", logical_id
    key_policy = json.dumps(properties(template.resources("AWS::KMS::Key")[key])["KeyPolicy"])
    assert "logs.${AWS::Region}.amazonaws.com" in key_policy

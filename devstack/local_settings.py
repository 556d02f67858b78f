"""The functions' settings on the local stack: what template.yaml sets deployed, under the local
names (`make run`, the tests, the bench). The only home of placeholder ARNs."""

from __future__ import annotations

_ACCOUNT = "123456789012"  # moto's account
_REGION = "us-east-1"

LOCAL_SETTINGS: dict[str, str] = {
    "STORAGES_TABLE": "pdb-storages",
    "PLANS_TABLE": "pdb-plans",
    "LOCKS_TABLE": "pdb-locks",
    "EXECUTIONS_TABLE": "pdb-executions",
    "BACKUPS_TABLE": "pdb-backups",
    "RESTORES_TABLE": "pdb-restores",
    "ARCHIVE_TABLE": "pdb-archive",
    "PRIMARY_BUCKET": "pdb-primary",
    "FALLBACK_BUCKET": "pdb-fallback",
    "ALLOWED_BUCKET_ARNS": "*",
    "SCHEDULE_GROUP": "pdb-schedules",
    "SCHEDULER_ROLE_ARN": f"arn:aws:iam::{_ACCOUNT}:role/pdb-scheduler",
    "SCHEDULE_DLQ_ARN": f"arn:aws:sqs:{_REGION}:{_ACCOUNT}:pdb-schedule-dlq",
    "EXECUTOR_FUNCTION_ARN": f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:pdb-executor",
    "ARCHIVER_FUNCTION_ARN": f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:pdb-archiver",
    "SCHEDULER_FUNCTION_NAME": "pdb-scheduler",
    "ARCHIVER_FUNCTION_NAME": "pdb-archiver",
    "RETENTION_FUNCTION_NAME": "pdb-retention",
    "RESTORE_STATE_MACHINE_ARN": f"arn:aws:states:{_REGION}:{_ACCOUNT}:stateMachine:pdb-restore",
    "DB_SECRET_ARN": "pdb-platform-db",
    "PAGE_TOKEN_KEY_SECRET_ARN": "pdb-page-token-key",
    "PLATFORM_DB_NAMES": "zstack,zstack_rest",
    # The restore function's Timeout in template.yaml (the local stack gives it the same).
    "RESTORE_STEP_SECONDS": "900",
}

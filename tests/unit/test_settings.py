"""Settings are read once at cold start; a missing one stops the function naming the variable."""

from __future__ import annotations

import pytest

from devstack.local_settings import LOCAL_SETTINGS
from platform_backup.settings import (
    ExecutorSettings,
    MissingSettings,
    SchedulerSettings,
    Settings,
    load,
)


def test_the_local_stack_gives_every_setting() -> None:
    settings = load(Settings, {"AWS_REGION": "us-east-1", **LOCAL_SETTINGS})

    assert settings.db_names == ["zstack", "zstack_rest"]
    assert settings.allowed_bucket_arns == ["*"]


def test_a_missing_setting_fails_naming_the_variable() -> None:
    # Given a deployed scheduler whose environment lacks its role and its dead-letter queue
    env = {"AWS_REGION": "eu-west-1", **LOCAL_SETTINGS}
    del env["SCHEDULER_ROLE_ARN"]
    env["SCHEDULE_DLQ_ARN"] = ""

    # When it loads its settings, then the cold start fails naming both variables
    with pytest.raises(MissingSettings) as failure:
        load(SchedulerSettings, env)
    assert "SCHEDULER_ROLE_ARN is not set" in str(failure.value)
    assert "SCHEDULE_DLQ_ARN is not set" in str(failure.value)


def test_no_placeholder_stands_in_for_a_deployed_value() -> None:
    # Given an environment with only the region, as a function with no settings would have
    with pytest.raises(MissingSettings) as failure:
        load(ExecutorSettings, {"AWS_REGION": "eu-west-1"})

    # Then nothing was made up: the secret, the databases and the tables are all named missing
    for name in ("DB_SECRET_ARN", "PLATFORM_DB_NAMES", "BACKUPS_TABLE"):
        assert f"{name} is not set" in str(failure.value)


def test_an_invalid_setting_names_the_variable_and_the_problem() -> None:
    env = {"AWS_REGION": "eu-west-1", **LOCAL_SETTINGS, "SAFETY_BACKUP_RETENTION_DAYS": "0"}

    with pytest.raises(MissingSettings, match=r"SAFETY_BACKUP_RETENTION_DAYS: .*greater than"):
        load(Settings, env)

"""Starting the restore workflow (the Step Functions state machine of template.yaml)."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.errors import DependencyFailed


class StepFunctionsWorkflow:
    def __init__(self, state_machine_arn: str, region: str) -> None:
        self._arn = state_machine_arn
        self._region = region

    def start(self, restore_id: str) -> None:
        # Named after the restore: Step Functions refuses a second execution of the same name,
        # so a repeated start can never run one restore twice.
        try:
            client("stepfunctions", self._region).start_execution(
                stateMachineArn=self._arn,
                name=restore_id,
                input=json.dumps({"restoreId": restore_id}),
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyFailed(
                f"the restore workflow could not be started ({error_code(exc) or exc})"
            ) from exc

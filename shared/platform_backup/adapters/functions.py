"""Invoking this service's own functions (the API asks the scheduler function to reconcile, the
archiver function to check the server before point-in-time recovery is turned on, and the
retention function to delete a backup)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from platform_backup.adapters.aws import client, error_code
from platform_backup.errors import Conflict, DependencyFailed, NotFound
from platform_backup.services.ports import ServerProblem


class FunctionInvoker:
    def __init__(self, region: str) -> None:
        self._region = region

    def call(self, function: str, payload: dict[str, Any]) -> Any:
        """Synchronous invoke; the function's own failure becomes DependencyFailed."""
        try:
            response = client("lambda", self._region).invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
            body = response["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            raise DependencyFailed(f"function '{function}' could not be invoked") from exc
        result = json.loads(body) if body else None
        if response.get("FunctionError"):
            kind = result.get("errorType", "Error") if isinstance(result, dict) else "Error"
            raise DependencyFailed(f"function '{function}' failed ({kind})")
        return result

    def start(self, function: str, payload: dict[str, Any]) -> None:
        """Asynchronous invoke (the function's async retry and failure destination apply)."""
        try:
            client("lambda", self._region).invoke(
                FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
            )
        except (ClientError, BotoCoreError) as exc:
            cause = error_code(exc) or type(exc).__name__
            raise DependencyFailed(f"function '{function}' could not be started ({cause})") from exc


class SchedulerFunctionSync:
    """ScheduleSync through the scheduler function, which alone may write schedules."""

    def __init__(self, invoker: FunctionInvoker, function_name: str) -> None:
        self._invoker = invoker
        self._function = function_name

    def reconcile(self, plan_id: str) -> None:
        result = self._invoker.call(self._function, {"action": "reconcile", "planId": plan_id})
        if not isinstance(result, dict) or not result.get("ok"):
            error = result.get("error") if isinstance(result, dict) else None
            raise DependencyFailed(error or "the scheduler function did not reconcile the plan")


class ExecutorLauncher:
    """Starts the executor asynchronously (its async retries are 0: a run is never repeated)."""

    def __init__(self, invoker: FunctionInvoker, function: str) -> None:
        self._invoker = invoker
        self._function = function

    def start_backup(self, payload: dict[str, object]) -> None:
        self._invoker.start(self._function, dict(payload))


class RetentionLauncher:
    """Starts the retention function on one plan asynchronously (``{"planId"}``)."""

    def __init__(self, invoker: FunctionInvoker, function: str) -> None:
        self._invoker = invoker
        self._function = function

    def start(self, plan_id: str) -> None:
        self._invoker.start(self._function, {"planId": plan_id})


class ArchiverServerCheck:
    """BinlogServerCheck through the archiver function, the one function that reaches the
    server's binary log: ``{"action": "check", "archiveIntervalMinutes": N}`` ->
    ``{"ok": bool, "problems": [{"setting", "message"}]}``."""

    def __init__(self, invoker: FunctionInvoker, function_name: str) -> None:
        self._invoker = invoker
        self._function = function_name

    def problems(self, archive_interval_minutes: int) -> list[ServerProblem]:
        payload = {"action": "check", "archiveIntervalMinutes": archive_interval_minutes}
        try:
            result = self._invoker.call(self._function, payload)
        except DependencyFailed as exc:
            raise DependencyFailed(
                "the archiver function could not be reached to check the server's binary log "
                f"({exc.message}); nothing was changed: try again"
            ) from exc
        answer = result if isinstance(result, dict) else {}
        listed = answer.get("problems")
        if not isinstance(answer.get("ok"), bool) or not isinstance(listed, list):
            raise DependencyFailed(
                "the archiver function gave no answer to the server check; nothing was changed"
            )
        found = [
            ServerProblem(str(p.get("setting") or "server"), str(p.get("message") or ""))
            for p in listed
            if isinstance(p, dict)
        ]
        if not answer["ok"] and not found:
            found = [ServerProblem("server", "the server's binary log cannot be archived")]
        return found


class RetentionFunctionDeletes:
    """BackupDeletes through the retention function, the one function that may delete object
    versions: ``{"action": "delete-backup", "backupId", "force"}`` -> ``{"ok": true}`` or
    ``{"ok": false, "code": "Conflict" | "NotFound", "error": message}``."""

    def __init__(self, invoker: FunctionInvoker, function_name: str) -> None:
        self._invoker = invoker
        self._function = function_name

    def delete_backup(self, backup_id: str, force: bool = False) -> None:
        payload = {"action": "delete-backup", "backupId": backup_id, "force": force}
        result = self._invoker.call(self._function, payload)
        answer = result if isinstance(result, dict) else {}
        if answer.get("ok") is True:
            return
        message = str(answer.get("error") or "the retention function did not delete the backup")
        if answer.get("code") == "NotFound":
            raise NotFound(message)
        if answer.get("code") == "Conflict":
            raise Conflict(message)
        raise DependencyFailed(message)

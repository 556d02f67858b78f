"""`run` and `executions`: backing up now, and what each run did or is doing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from platform_backup_cli.client import ApiClient, api, segment
from platform_backup_cli.jobs import JobKind, add_show_and_watch
from platform_backup_cli.plans import plan_id_of
from platform_backup_cli.render import (
    Column,
    JsonFlag,
    Limit,
    NextToken,
    emit_json,
    fields,
    moment,
    say,
    size,
)
from platform_backup_cli.storages import storage_name
from platform_backup_cli.watch import Gauge, Interval

app = typer.Typer(help="Backup runs: scheduled, manual, and before restores.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("ID", lambda e: e["id"]),
    ("Trigger", lambda e: e.get("trigger")),
    ("Status", lambda e: e.get("status")),
    ("Phase", lambda e: e.get("phase")),
    ("Started", lambda e: moment(e.get("startedAt"))),
    ("Finished", lambda e: moment(e.get("finishedAt"))),
    ("Dumped", lambda e: size((e.get("progress") or {}).get("bytesDumped"))),
    ("Backup", lambda e: e.get("backupId")),
]
PlanOpt = Annotated[str | None, typer.Option("--plan", help="The plan's id (default: the only).")]


def gauge(execution: dict[str, Any]) -> Gauge:
    progress = execution.get("progress") or {}
    done, total = progress.get("tablesDone", 0), progress.get("tablesTotal", 0)
    return Gauge(
        phase=str(execution.get("phase", "")),
        percent=float(progress.get("percent") or 0.0),
        detail=f"{size(progress.get('bytesDumped', 0))}  tables {done}/{total}",
        eta_seconds=progress.get("etaSeconds"),
    )


def outcome(client: ApiClient, execution: dict[str, Any]) -> str:
    status = execution.get("status")
    if status == "succeeded":
        progress = execution.get("progress") or {}
        return (
            f"succeeded: backup {execution.get('backupId')} "
            f"({size(progress.get('bytesDumped'))} dumped) "
            f"on storage {storage_name(client, execution.get('storageId'))}"
        )
    if status == "skipped":
        return f"skipped: {execution.get('reason') or execution.get('error')}"
    return f"{status}: {execution.get('error')}"


def warnings(execution: dict[str, Any]) -> list[str]:
    reason = execution.get("failoverReason")
    return [f"failover: {reason}"] if reason else []


def details(execution: dict[str, Any]) -> list[Any]:
    progress = execution.get("progress") or {}
    return [
        fields(
            f"Execution {execution['id']}",
            [
                ("plan", execution.get("planId")),
                ("trigger", execution.get("trigger")),
                ("scheduled for", moment(execution.get("scheduledTime"))),
                ("status", execution.get("status")),
                ("phase", execution.get("phase")),
                ("progress", f"{progress.get('percent', 0)}%"),
                ("dumped", size(progress.get("bytesDumped"))),
                ("tables", f"{progress.get('tablesDone', 0)}/{progress.get('tablesTotal', 0)}"),
                ("storage", execution.get("storageId")),
                ("failover", execution.get("failoverReason")),
                ("skipped because", execution.get("reason")),
                ("error", execution.get("error")),
                ("backup", execution.get("backupId")),
                ("requested by", execution.get("requestedBy")),
                ("started", moment(execution.get("startedAt"))),
                ("finished", moment(execution.get("finishedAt"))),
            ],
        )
    ]


EXECUTIONS = JobKind(
    noun="execution",
    path="/v1/executions",
    title="Executions",
    columns=COLUMNS,
    start_with="platform-backup run",
    gauge=gauge,
    outcome=outcome,
    warnings=warnings,
    details=details,
)


def run(
    ctx: typer.Context,
    plan: PlanOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
    interval: Interval = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """Back up now (a manual run of the plan)."""
    client = api(ctx)
    execution = client.post(f"/v1/plans/{segment(plan_id_of(client, plan))}/executions")
    if watch:
        if not as_json:
            say(f"started execution {execution['id']}")
        EXECUTIONS.watch(client, execution["id"], interval, as_json)
    elif as_json:
        emit_json(execution)
    else:
        say(
            f"started execution {execution['id']}: "
            f"follow it with `platform-backup executions watch {execution['id']}`"
        )


@app.command("list")
def list_executions(
    ctx: typer.Context,
    plan: PlanOpt = None,
    status: Annotated[
        str | None,
        typer.Option(help="running, succeeded, partially-succeeded, failed or skipped."),
    ] = None,
    limit: Limit = None,
    next_token: NextToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Executions, newest first."""
    EXECUTIONS.list_page(
        api(ctx), as_json, planId=plan, status=status, limit=limit, nextToken=next_token
    )


add_show_and_watch(
    app,
    EXECUTIONS,
    show_help="One execution with its progress, error and backup.",
    watch_help="Follow an execution live until it ends; exits 0 only if it succeeded.",
)

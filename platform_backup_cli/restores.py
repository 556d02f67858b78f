"""`restore`: a backup back into new databases, or in place of the live ones."""

from __future__ import annotations

from enum import StrEnum
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
from platform_backup_cli.watch import Gauge, Interval

app = typer.Typer(help="Restores of backups, with verification.", no_args_is_help=True)


class Mode(StrEnum):
    NEW_DATABASE = "new-database"
    IN_PLACE = "in-place"


class Source(StrEnum):
    AUTO = "auto"
    LOCAL = "local"
    REMOTE = "remote"


def databases_of(restore: dict[str, Any]) -> str:
    return "\n".join(f"{src} -> {dst}" for src, dst in (restore.get("databases") or {}).items())


COLUMNS: list[Column] = [
    ("ID", lambda r: r["id"]),
    ("Backup", lambda r: r.get("backupId")),
    ("Status", lambda r: r.get("status")),
    ("Phase", lambda r: r.get("phase")),
    ("Mode", lambda r: (r.get("target") or {}).get("mode")),
    ("Databases", databases_of),
    ("Started", lambda r: moment(r.get("startedAt"))),
    ("Finished", lambda r: moment(r.get("finishedAt"))),
]


def gauge(restore: dict[str, Any]) -> Gauge:
    progress = restore.get("progress") or {}
    return Gauge(
        phase=str(restore.get("phase", "")),
        percent=float(progress.get("percent") or 0.0),
        detail=f"{size(progress.get('bytesApplied', 0))} of {size(progress.get('bytesTotal', 0))}",
        eta_seconds=progress.get("etaSeconds"),
    )


def outcome(_: ApiClient, restore: dict[str, Any]) -> str:
    status = restore.get("status")
    if status == "succeeded":
        done = f"succeeded: {databases_of(restore).replace(chr(10), ', ')}"
        if restore.get("tables"):
            read = size(restore.get("bytesRead") or 0)
            done += f" (tables {', '.join(restore['tables'])}; {read} read)"
        return done
    if status == "rolled-back":
        return f"rolled back, the target is as it was: {restore.get('error')}"
    return f"{status}: {restore.get('error')}"


def warnings(restore: dict[str, Any]) -> list[str]:
    lines = [f"warning: {warning}" for warning in restore.get("warnings") or []]
    if restore.get("safetyBackupId"):
        lines.append(f"safety backup of the target taken first: {restore['safetyBackupId']}")
    return lines


def details(restore: dict[str, Any]) -> list[Any]:
    progress = restore.get("progress") or {}
    target = restore.get("target") or {}
    shown: list[Any] = [
        fields(
            f"Restore {restore['id']}",
            [
                ("backup", restore.get("backupId")),
                ("status", restore.get("status")),
                ("phase", restore.get("phase")),
                ("point in time", moment(restore.get("pointInTime"))),
                ("progress", f"{progress.get('percent', 0)}%"),
                ("mode", target.get("mode")),
                ("databases", databases_of(restore)),
                ("tables", ", ".join(restore.get("tables") or []) or None),
                ("bytes read", size(restore["bytesRead"]) if restore.get("bytesRead") else None),
                ("safety backup", restore.get("safetyBackupId")),
                ("error", restore.get("error")),
                ("warnings", restore.get("warnings")),
                ("started", moment(restore.get("startedAt"))),
                ("finished", moment(restore.get("finishedAt"))),
            ],
        )
    ]
    counts = restore.get("rowCounts") or {}
    if counts:
        shown.append(
            fields("Rows verified", [(name, str(rows)) for name, rows in sorted(counts.items())])
        )
    return shown


RESTORES = JobKind(
    noun="restore",
    path="/v1/restores",
    title="Restores",
    columns=COLUMNS,
    start_with="platform-backup restore start",
    gauge=gauge,
    outcome=outcome,
    warnings=warnings,
    details=details,
)


@app.command("start")
def start(
    ctx: typer.Context,
    backup: Annotated[str | None, typer.Option(help="The backup's id.")] = None,
    before: Annotated[
        str | None, typer.Option(help="Or: the newest successful backup before this ISO time.")
    ] = None,
    point_in_time: Annotated[
        str | None,
        typer.Option(
            "--point-in-time",
            help="Or: the databases as they were at this ISO time with its offset (a full "
            "backup, then the archived binary log replayed up to it).",
        ),
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan", help="With --before or --point-in-time: the plan (default: the only)."
        ),
    ] = None,
    mode: Annotated[Mode, typer.Option(help="Into new databases, or over the live ones.")] = (
        Mode.NEW_DATABASE
    ),
    suffix: Annotated[
        str | None,
        typer.Option(help="new-database: each database restored as <name><suffix>."),
    ] = None,
    source: Annotated[
        Source | None, typer.Option(help="Which copy (default auto: local first).")
    ] = None,
    target_secret_arn: Annotated[
        str | None, typer.Option(help="Restore onto another server, reached with this secret.")
    ] = None,
    no_safety_backup: Annotated[
        bool,
        typer.Option(
            "--no-safety-backup",
            help="in-place onto another server (--target-secret-arn): no safety backup can be "
            "taken there. The platform database's is always taken.",
        ),
    ] = False,
    confirm: Annotated[
        str | None,
        typer.Option(
            help="in-place: the plan's name (or the backup's id when its plan is gone), to "
            "confirm the overwrite."
        ),
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            help="Only this table (database.table; repeat for more), into new databases or, "
            "with --mode in-place, over that table alone, reading only its part of the backup.",
        ),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
    interval: Interval = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup (--backup), the newest one before a time (--before), or the state at
    an instant (--point-in-time); with --table, only those tables."""
    if sum(given is not None for given in (backup, before, point_in_time)) != 1:
        raise typer.BadParameter(
            "give one of --backup ID, --before TIME and --point-in-time TIME",
            param_hint="--backup / --before / --point-in-time",
        )
    if mode == Mode.IN_PLACE and not confirm:
        raise typer.BadParameter(
            "in-place overwrites the live databases: add --confirm <the plan's name> (or the "
            "backup's id when its plan is gone)",
            param_hint="--confirm",
        )
    target: dict[str, Any] = {"mode": mode.value}
    if suffix is not None:
        target["databaseSuffix"] = suffix
    body: dict[str, Any] = {"target": target}
    optional = {
        "source": source.value if source else None,
        "targetSecretArn": target_secret_arn,
        "safetyBackup": False if no_safety_backup else None,
        "confirm": confirm,
        "tables": list(table) if table else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    client = api(ctx)
    # In place has routes of its own (an IAM policy can allow one kind and deny the other).
    route = "in-place-restores" if mode == Mode.IN_PLACE else "restores"
    if backup is not None:
        restore = client.post(f"/v1/backups/{segment(backup)}/{route}", body)
    else:
        if point_in_time is not None:
            body["pointInTime"] = point_in_time
        else:
            body["before"] = before
        restore = client.post(f"/v1/plans/{segment(plan_id_of(client, plan))}/{route}", body)
    if watch:
        if not as_json:
            say(f"started restore {restore['id']} of backup {restore.get('backupId')}")
        RESTORES.watch(client, restore["id"], interval, as_json)
    elif as_json:
        emit_json(restore)
    else:
        say(
            f"started restore {restore['id']} of backup {restore.get('backupId')}: "
            f"follow it with `platform-backup restore watch {restore['id']}`"
        )


@app.command("list")
def list_restores(
    ctx: typer.Context,
    limit: Limit = None,
    next_token: NextToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Restores, newest first."""
    RESTORES.list_page(api(ctx), as_json, limit=limit, nextToken=next_token)


add_show_and_watch(
    app,
    RESTORES,
    show_help="One restore: its target, progress, warnings and the row counts it verified.",
    watch_help="Follow a restore live until it ends; exits 0 only if it succeeded.",
)

"""`backups`: the dumps the plan made, and their copies in each storage."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from platform_backup_cli.client import api, segment
from platform_backup_cli.render import (
    Column,
    JsonFlag,
    Limit,
    NextToken,
    console,
    emit_json,
    fields,
    moment,
    print_page,
    say,
    size,
    table,
)

app = typer.Typer(help="Backups and their local and remote copies.", no_args_is_help=True)


def copies_of(backup: dict[str, Any]) -> str:
    return "\n".join(
        f"{c.get('role')} {c.get('bucket')} ({c.get('status')})" for c in backup.get("copies", [])
    )


COLUMNS: list[Column] = [
    ("ID", lambda b: b["id"]),
    ("Created", lambda b: moment(b.get("createdAt"))),
    ("Trigger", lambda b: b.get("trigger")),
    ("Databases", lambda b: b.get("databases")),
    ("Raw", lambda b: size(b.get("rawBytes"))),
    ("Compressed", lambda b: size(b.get("compressedBytes"))),
    ("Copies", copies_of),
]
COPY_COLUMNS: list[Column] = [
    ("Role", lambda c: c.get("role")),
    ("Storage", lambda c: c.get("storageId")),
    ("Status", lambda c: c.get("status")),
    ("Size", lambda c: size(c.get("bytes"))),
    ("Object", lambda c: f"s3://{c.get('bucket')}/{c.get('key')}"),
]
BackupId = Annotated[str, typer.Argument(help="The backup's id.")]


@app.command("list")
def list_backups(
    ctx: typer.Context,
    plan: Annotated[str | None, typer.Option("--plan", help="Only this plan's.")] = None,
    limit: Limit = None,
    next_token: NextToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Backups, newest first, with their copies."""
    page = api(ctx).get("/v1/backups", planId=plan, limit=limit, nextToken=next_token)
    print_page(page, "Backups", COLUMNS, as_json)


@app.command("show")
def show(ctx: typer.Context, backup_id: BackupId, as_json: JsonFlag = False) -> None:
    """One backup: its size, checksum, databases and where its copies are."""
    backup = api(ctx).get(f"/v1/backups/{segment(backup_id)}")
    if as_json:
        emit_json(backup)
        return
    out = console()
    out.print(
        fields(
            f"Backup {backup['id']}",
            [
                ("plan", backup.get("planId")),
                ("execution", backup.get("executionId")),
                ("trigger", backup.get("trigger")),
                ("created", moment(backup.get("createdAt"))),
                ("status", backup.get("status")),
                ("databases", backup.get("databases")),
                ("raw", size(backup.get("rawBytes"))),
                (
                    "compressed",
                    f"{size(backup.get('compressedBytes'))} ({backup.get('compression')})",
                ),
                ("sha256", backup.get("sha256")),
                (
                    "took",
                    f"{backup['durationSeconds']} s" if backup.get("durationSeconds") else None,
                ),
            ],
        )
    )
    out.print(table("Copies", COPY_COLUMNS, backup.get("copies", [])))


@app.command("delete")
def delete(
    ctx: typer.Context,
    backup_id: BackupId,
    force: Annotated[
        bool, typer.Option("--force", help="Also the newest successful backup.")
    ] = False,
) -> None:
    """Delete a backup and its copies."""
    api(ctx).delete(f"/v1/backups/{segment(backup_id)}", force="true" if force else None)
    say(f"deleted backup {backup_id}")

"""`catalog rebuild`: the backup records re-made from a storage's manifests after the catalog
(DynamoDB) was lost or damaged."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from platform_backup_cli.client import CliError, api, segment
from platform_backup_cli.render import Column, JsonFlag, console, emit_json, say, size, table
from platform_backup_cli.storages import resolve_storage

app = typer.Typer(help="The catalog of backups (the records in DynamoDB).", no_args_is_help=True)

KINDS = ("recreated", "copiesAdded", "skipped", "corrupt")
COLUMNS: list[Column] = [
    ("Backup", lambda e: e.get("backupId") or "-"),
    ("Outcome", lambda e: e["outcome"]),
    ("Key", lambda e: e["key"]),
    ("Why", lambda e: e.get("reason") or ""),
]


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    storage: Annotated[
        str, typer.Option("--storage", help="The storage (id or name) whose manifests to read.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Re-create the backup records the catalog lacks from the storage's manifests, each dump
    verified against its size and SHA-256 first; nothing is deleted. Rebuild every storage the
    plan uses, local ones first. Exits 1 when a dump is corrupt."""
    client = api(ctx)
    storage_id = resolve_storage(client, storage)
    total: dict[str, Any] = {kind: [] for kind in KINDS}
    start_after: str | None = None
    while True:
        answer = client.post(
            f"/v1/storages/{segment(storage_id)}/catalog-rebuilds", {"startAfter": start_after}
        )
        for kind in KINDS:
            total[kind] += answer.get(kind, [])
        if answer.get("complete"):
            total["usedBytes"] = answer.get("usedBytes")
            break
        if answer.get("nextStartAfter") in (None, start_after) and not any(
            answer.get(kind) for kind in KINDS
        ):
            raise CliError("the rebuild made no progress in a whole call: try again later")
        start_after = answer.get("nextStartAfter")
    total["storageId"] = storage_id
    if as_json:
        emit_json(total)
    else:
        rows = [{**entry, "outcome": kind} for kind in KINDS for entry in total[kind]]
        if rows:
            console().print(table("Catalog rebuild", COLUMNS, rows))
        say(
            f"{len(total['recreated'])} recreated, {len(total['copiesAdded'])} copies added, "
            f"{len(total['skipped'])} skipped, {len(total['corrupt'])} corrupt; "
            f"the storage now counts {size(total['usedBytes'])} in use"
        )
    if total["corrupt"]:
        raise typer.Exit(1)

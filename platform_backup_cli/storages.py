"""`storages` and `quota`: where backups go, and how much room is left."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from platform_backup_cli.client import ApiClient, CliError, api, segment
from platform_backup_cli.render import (
    Column,
    JsonFlag,
    Limit,
    NextToken,
    console,
    emit_json,
    fields,
    moment,
    parse_size,
    print_page,
    say,
    size,
    table,
)

app = typer.Typer(help="Backup storages (S3 buckets) and their quotas.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("ID", lambda s: s["id"]),
    ("Name", lambda s: s["name"]),
    ("Role", lambda s: s["role"]),
    ("Location", lambda s: f"s3://{s['bucket']}/{s.get('prefix', '')}"),
    ("Capacity", lambda s: size(s.get("capacityBytes"))),
    ("Used", lambda s: size(s.get("usedBytes"))),
    ("Available", lambda s: size(s.get("availableBytes"))),
]
StorageRef = Annotated[str, typer.Argument(help="The storage's id or its name.")]


def all_storages(client: ApiClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = client.get("/v1/storages", limit=100, nextToken=token)
        items += page["items"]
        token = page.get("nextToken")
        if not token:
            return items


def resolve_storages(client: ApiClient, refs: list[str]) -> list[str]:
    """Storage ids from ids or names, so operators can write `--local-storage-ids primary`."""
    storages = all_storages(client)
    ids = {s["id"] for s in storages}
    resolved = []
    for ref in refs:
        named = [s["id"] for s in storages if s["name"] == ref]
        if ref not in ids and len(named) > 1:
            raise CliError(f"several storages are named '{ref}': give its id")
        # An unknown reference goes to the API as it is, whose answer says what is wrong with it.
        resolved.append(named[0] if ref not in ids and named else ref)
    return resolved


def resolve_storage(client: ApiClient, ref: str) -> str:
    return resolve_storages(client, [ref])[0]


def storage_name(client: ApiClient, storage_id: str | None) -> str:
    """The storage's name for people; its id when it is gone or cannot be read."""
    if not storage_id:
        return "-"
    try:
        return str(client.get(f"/v1/storages/{segment(storage_id)}")["name"])
    except CliError:
        return storage_id


def show_storage(storage: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(storage)
        return
    console().print(
        fields(
            f"Storage {storage['name']}",
            [
                ("id", storage["id"]),
                ("role", storage["role"]),
                ("bucket", storage["bucket"]),
                ("region", storage["region"]),
                ("prefix", storage.get("prefix")),
                ("capacity", size(storage.get("capacityBytes"))),
                ("used", size(storage.get("usedBytes"))),
                ("available", size(storage.get("availableBytes"))),
                ("created", moment(storage.get("createdAt"))),
            ],
        )
    )


@app.command("list")
def list_storages(
    ctx: typer.Context,
    limit: Limit = None,
    next_token: NextToken = None,
    as_json: JsonFlag = False,
) -> None:
    """List the registered storages."""
    page = api(ctx).get("/v1/storages", limit=limit, nextToken=next_token)
    print_page(page, "Storages", COLUMNS, as_json)


@app.command("add")
def add_storage(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name for people, e.g. primary.")],
    role: Annotated[str, typer.Option(help="local (primary/failover) or remote (off-site).")],
    bucket: Annotated[str, typer.Option(help="An existing S3 bucket.")],
    capacity_bytes: Annotated[
        int,
        typer.Option(
            "--capacity",
            "--capacity-bytes",
            parser=parse_size,
            metavar="SIZE",
            help="The authorized quota: bytes, or with a unit (100GiB, 500GB).",
        ),
    ],
    region: Annotated[str, typer.Option(envvar="AWS_REGION", help="The bucket's region.")],
    prefix: Annotated[str, typer.Option(help="Key prefix: empty or ending with '/'.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Register a bucket as a backup storage."""
    storage = api(ctx).post(
        "/v1/storages",
        {
            "name": name,
            "role": role,
            "bucket": bucket,
            "region": region,
            "prefix": prefix,
            "capacityBytes": capacity_bytes,
        },
    )
    show_storage(storage, as_json)


@app.command("show")
def show(ctx: typer.Context, storage: StorageRef, as_json: JsonFlag = False) -> None:
    """Show one storage and its usage."""
    client = api(ctx)
    show_storage(client.get(f"/v1/storages/{segment(resolve_storage(client, storage))}"), as_json)


@app.command("remove")
def remove(ctx: typer.Context, storage: StorageRef) -> None:
    """Remove a storage that no plan uses and that holds no backups."""
    client = api(ctx)
    storage_id = resolve_storage(client, storage)
    client.delete(f"/v1/storages/{segment(storage_id)}")
    say(f"removed storage {storage_id}")


def quota(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The authorized capacity of all storages, what is used and what is left."""
    answer = api(ctx).get("/v1/quota")
    if as_json:
        emit_json(answer)
        return
    out = console()
    out.print(
        f"capacity {size(answer['capacityBytes'])}, used {size(answer['usedBytes'])}, "
        f"available {size(answer['availableBytes'])}"
    )
    if answer.get("storages"):
        out.print(table("Storages", COLUMNS, answer["storages"]))

"""`plan`: the backup plan of the platform database, from flags or from a YAML/JSON file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from platform_backup_cli.client import ApiClient, CliError, api, segment
from platform_backup_cli.render import (
    JsonFlag,
    console,
    emit_json,
    fields,
    moment,
    say,
    size,
    table,
)
from platform_backup_cli.storages import resolve_storage, resolve_storages

app = typer.Typer(help="The backup plan: schedule, storages, retention.", no_args_is_help=True)

# Each flag and the field it sets (retention's as "<side>Mode"/"<side>Value").
FLAGS = {
    "name": "name",
    "description": "description",
    "data_center": "dataCenter",
    "local_storage_ids": "localStorageIds",
    "remote_sync": "remoteSync",
    "remote_storage_id": "remoteStorageId",
    "cycle": "cycle",
    "weekdays": "weekdays",
    "execution_time": "executionTime",
    "start_time": "startTime",
    "timezone": "timezone",
    "retention_local_mode": "localMode",
    "retention_local_value": "localValue",
    "retention_remote_mode": "remoteMode",
    "retention_remote_value": "remoteValue",
    "point_in_time": "pointInTime",
    "archive_interval": "archiveInterval",
}
# What GET returns beyond the body that POST and PUT take.
# What the API adds to a plan it returns (the storages by name), never sent back.
READ_ONLY = ("id", "state", "revision", "createdAt", "updatedAt", "storages")

PlanRef = Annotated[
    str | None, typer.Argument(help="The plan's id (default: the only plan).", show_default=False)
]
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file", "-f", exists=True, dir_okay=False, help="The plan's body as YAML or JSON."
    ),
]
NameOpt = Annotated[str | None, typer.Option(help="The plan's name.")]
DescriptionOpt = Annotated[str | None, typer.Option(help="Free text.")]
DataCenterOpt = Annotated[str | None, typer.Option(help="The data center it protects.")]
LocalStoragesOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Local storage ids or names: the primary, then its failover (repeat or comma-join)."
    ),
]
RemoteSyncOpt = Annotated[
    bool | None, typer.Option("--remote-sync/--no-remote-sync", help="Copy backups off-site.")
]
RemoteStorageOpt = Annotated[str | None, typer.Option(help="Remote storage id or name.")]
CycleOpt = Annotated[str | None, typer.Option(help="weekly, daily or hourly.")]
WeekdaysOpt = Annotated[
    list[str] | None, typer.Option(help="Weekly: MON..SUN (repeat or comma-join).")
]
ExecutionTimeOpt = Annotated[
    str | None, typer.Option(help="Weekly and daily: HH:MM in the plan's timezone.")
]
StartTimeOpt = Annotated[
    str | None,
    typer.Option(help="ISO 8601 instant with an offset (create: default now)."),
]
TimezoneOpt = Annotated[str | None, typer.Option(help="IANA time zone, e.g. Asia/Shanghai.")]
LocalModeOpt = Annotated[str | None, typer.Option(help="count or days.")]
LocalValueOpt = Annotated[int | None, typer.Option(help="Copies or days kept locally.")]
RemoteModeOpt = Annotated[str | None, typer.Option(help="permanent, count or days.")]
RemoteValueOpt = Annotated[int | None, typer.Option(help="Copies or days kept remotely.")]


class Switch(StrEnum):
    on = "on"
    off = "off"


PointInTimeOpt = Annotated[
    Switch | None,
    typer.Option(
        help="Archive the binary log to restore to any second (on: the server is checked first)."
    ),
]
ArchiveIntervalOpt = Annotated[
    int | None, typer.Option(help="Minutes between binary-log archive runs, 1 to 15 (default 5).")
]


def single_plan(client: ApiClient) -> dict[str, Any]:
    plans = client.get("/v1/plans", limit=2)["items"]
    if not plans:
        raise CliError("no plan exists: create one with `platform-backup plan create`")
    if len(plans) > 1:
        raise CliError("several plans exist: name one by its id")
    plan: dict[str, Any] = plans[0]
    return plan


def get_plan(client: ApiClient, plan_id: str | None) -> dict[str, Any]:
    if plan_id is None:
        return single_plan(client)
    plan: dict[str, Any] = client.get(f"/v1/plans/{segment(plan_id)}")
    return plan


def plan_id_of(client: ApiClient, plan_id: str | None) -> str:
    return plan_id if plan_id is not None else str(single_plan(client)["id"])


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _read_file(path: Path) -> dict[str, Any]:
    try:
        # YAML is a superset of JSON, so one parser reads both.
        body = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--file") from None
    if not isinstance(body, dict):
        raise typer.BadParameter(f"{path} does not hold a plan (a mapping)", param_hint="--file")
    return body


def _apply(body: dict[str, Any], client: ApiClient, given: dict[str, Any]) -> dict[str, Any]:
    """The body with every flag that was given applied; absent flags leave fields alone."""
    policy = dict(body.get("policy") or {})
    retention = dict(body.get("retention") or {})
    for key in ("name", "description", "dataCenter", "localStorageIds", "remoteStorageId"):
        if key in given:
            body[key] = given[key]
    if "remoteSync" in given:
        body["remoteSync"] = given["remoteSync"]
        if not given["remoteSync"]:
            # The API takes a remote storage and remote retention only with remote sync.
            body["remoteStorageId"] = None
            retention["remote"] = None
    if "cycle" in given:
        policy["cycle"] = given["cycle"]
        # Each cycle takes its own fields; the ones of the old cycle would be refused.
        if given["cycle"] != "weekly":
            policy.pop("weekdays", None)
        if given["cycle"] == "hourly":
            policy.pop("executionTime", None)
    for key in ("weekdays", "executionTime", "startTime", "timezone"):
        if key in given:
            policy[key] = given[key]
    for side in ("local", "remote"):
        mode, value = given.get(f"{side}Mode"), given.get(f"{side}Value")
        if mode is None and value is None:
            continue
        kept = dict(retention.get(side) or {})
        if mode is not None:
            kept["mode"] = mode
            if mode == "permanent":
                kept.pop("value", None)
        if value is not None:
            kept["value"] = value
        retention[side] = kept
    if policy:
        body["policy"] = policy
    if retention:
        body["retention"] = retention
    if "pointInTime" in given or "archiveInterval" in given:
        point_in_time = dict(body.get("pointInTime") or {})
        if "pointInTime" in given:
            point_in_time["enabled"] = given["pointInTime"] == Switch.on
        if "archiveInterval" in given:
            point_in_time["archiveIntervalMinutes"] = given["archiveInterval"]
        body["pointInTime"] = point_in_time
    return _with_storage_ids(client, body)


def _with_storage_ids(client: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    """Storages named by name, in flags or in the file, become their ids."""
    local, remote = body.get("localStorageIds"), body.get("remoteStorageId")
    if isinstance(local, list) and local:
        body["localStorageIds"] = resolve_storages(client, [str(ref) for ref in local])
    if isinstance(remote, str):
        body["remoteStorageId"] = resolve_storage(client, remote)
    return body


def _changes(params: dict[str, Any]) -> dict[str, Any]:
    """The plan fields the flags set, by their API names."""
    # ctx.params holds click's raw values: a list flag not given is an empty tuple.
    changes = {
        field: params[flag] for flag, field in FLAGS.items() if params[flag] not in (None, ())
    }
    if "localStorageIds" in changes:
        changes["localStorageIds"] = _split(changes["localStorageIds"])
    if "weekdays" in changes:
        changes["weekdays"] = [day.upper() for day in _split(changes["weekdays"])]
    return changes


def schedule_of(policy: dict[str, Any]) -> str:
    cycle = policy.get("cycle")
    zone = policy.get("timezone", "UTC")
    if cycle == "weekly":
        days = ",".join(policy.get("weekdays") or [])
        when = f"weekly on {days} at {policy.get('executionTime')}"
    elif cycle == "daily":
        when = f"daily at {policy.get('executionTime')}"
    else:
        when = f"{cycle}, at the start time's minute"
    return f"{when} ({zone}), from {policy.get('startTime')}"


def retention_of(retention: dict[str, Any]) -> str:
    parts = []
    for side in ("local", "remote"):
        rule = retention.get(side)
        if rule:
            value = "" if rule.get("mode") == "permanent" else f" {rule.get('value')}"
            parts.append(f"{side}: {rule.get('mode')}{value}")
    return "; ".join(parts)


def point_in_time_of(point_in_time: dict[str, Any] | None) -> str:
    if not point_in_time or not point_in_time.get("enabled"):
        return "off"
    return f"on, binary log archived every {point_in_time.get('archiveIntervalMinutes')} min"


def _storages(plan: dict[str, Any], uses: tuple[str, ...]) -> list[str]:
    """The plan's storages by name, with their room (an older API names only their ids)."""
    named = [s for s in plan.get("storages") or [] if s.get("use") in uses]
    if not named:
        ids = plan.get("localStorageIds") if "primary" in uses else plan.get("remoteStorageId")
        return list(ids or []) if isinstance(ids, list) else [ids] if ids else []
    return [
        f"{s.get('name') or s['id']} ({s['use']}, {size(s.get('availableBytes'))} "
        f"of {size(s.get('capacityBytes'))} free)"
        for s in named
    ]


def show_plan(plan: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(plan)
        return
    console().print(
        fields(
            f"Plan {plan['name']}",
            [
                ("id", plan["id"]),
                ("state", plan.get("state")),
                ("description", plan.get("description")),
                ("data center", plan.get("dataCenter")),
                ("local storages", _storages(plan, ("primary", "failover"))),
                ("remote sync", "yes" if plan.get("remoteSync") else "no"),
                ("remote storage", _storages(plan, ("remote",))),
                ("schedule", schedule_of(plan.get("policy") or {})),
                ("retention", retention_of(plan.get("retention") or {})),
                ("point-in-time", point_in_time_of(plan.get("pointInTime"))),
                ("revision", plan.get("revision")),
                ("created", moment(plan.get("createdAt"))),
                ("updated", moment(plan.get("updatedAt"))),
            ],
        )
    )


@app.command("create")
def create(
    ctx: typer.Context,
    file: FileOpt = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    data_center: DataCenterOpt = None,
    local_storage_ids: LocalStoragesOpt = None,
    remote_sync: RemoteSyncOpt = None,
    remote_storage_id: RemoteStorageOpt = None,
    cycle: CycleOpt = None,
    weekdays: WeekdaysOpt = None,
    execution_time: ExecutionTimeOpt = None,
    start_time: StartTimeOpt = None,
    timezone: TimezoneOpt = None,
    retention_local_mode: LocalModeOpt = None,
    retention_local_value: LocalValueOpt = None,
    retention_remote_mode: RemoteModeOpt = None,
    retention_remote_value: RemoteValueOpt = None,
    point_in_time: PointInTimeOpt = None,
    archive_interval: ArchiveIntervalOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Create the plan from flags, or from --file (flags given with it override the file)."""
    client = api(ctx)
    changes = _changes(ctx.params)
    if file is None and start_time is None:
        changes["startTime"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    body = _apply(_read_file(file) if file else {}, client, changes)
    show_plan(client.post("/v1/plans", body), as_json)


@app.command("update")
def update(
    ctx: typer.Context,
    plan_id: PlanRef = None,
    file: FileOpt = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    data_center: DataCenterOpt = None,
    local_storage_ids: LocalStoragesOpt = None,
    remote_sync: RemoteSyncOpt = None,
    remote_storage_id: RemoteStorageOpt = None,
    cycle: CycleOpt = None,
    weekdays: WeekdaysOpt = None,
    execution_time: ExecutionTimeOpt = None,
    start_time: StartTimeOpt = None,
    timezone: TimezoneOpt = None,
    retention_local_mode: LocalModeOpt = None,
    retention_local_value: LocalValueOpt = None,
    retention_remote_mode: RemoteModeOpt = None,
    retention_remote_value: RemoteValueOpt = None,
    point_in_time: PointInTimeOpt = None,
    archive_interval: ArchiveIntervalOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the plan: the flags given, on the current plan; or --file as the whole new body."""
    client = api(ctx)
    current = get_plan(client, plan_id)
    # A file may be a plan as the API returned it: what the API adds is not sent back.
    source = _read_file(file) if file else current
    body = {k: v for k, v in source.items() if k not in READ_ONLY}
    body = _apply(body, client, _changes(ctx.params))
    show_plan(client.put(f"/v1/plans/{segment(current['id'])}", body), as_json)


@app.command("show")
def show(ctx: typer.Context, plan_id: PlanRef = None, as_json: JsonFlag = False) -> None:
    """Show the plan."""
    show_plan(get_plan(api(ctx), plan_id), as_json)


def _set_state(ctx: typer.Context, plan_id: str | None, action: str, as_json: bool) -> None:
    client = api(ctx)
    plan = client.post(f"/v1/plans/{segment(plan_id_of(client, plan_id))}/{action}")
    if as_json:
        emit_json(plan)
    else:
        say(f"plan {plan['name']} ({plan['id']}) is {plan['state']}")


@app.command("pause")
def pause(ctx: typer.Context, plan_id: PlanRef = None, as_json: JsonFlag = False) -> None:
    """Stop scheduled runs until resumed (run-now still works)."""
    _set_state(ctx, plan_id, "pause", as_json)


@app.command("resume")
def resume(ctx: typer.Context, plan_id: PlanRef = None, as_json: JsonFlag = False) -> None:
    """Run on schedule again."""
    _set_state(ctx, plan_id, "resume", as_json)


@app.command("delete")
def delete(ctx: typer.Context, plan_id: PlanRef = None) -> None:
    """Delete the plan and its schedule; its backups stay."""
    client = api(ctx)
    target = plan_id_of(client, plan_id)
    client.delete(f"/v1/plans/{segment(target)}")
    say(f"deleted plan {target}; its backups stay")


@app.command("next-runs")
def next_runs(
    ctx: typer.Context,
    plan_id: PlanRef = None,
    count: Annotated[int, typer.Option(min=1, help="How many runs.")] = 3,
    as_json: JsonFlag = False,
) -> None:
    """The plan's next run times, in its timezone and in UTC."""
    client = api(ctx)
    answer = client.get(f"/v1/plans/{segment(plan_id_of(client, plan_id))}/next-runs", count=count)
    if as_json:
        emit_json(answer)
    elif not answer["runs"]:
        say("no runs ahead")
    else:
        columns = [("Local", lambda r: r["local"]), ("UTC", lambda r: r["utc"])]
        console().print(table("Next runs", columns, answer["runs"]))

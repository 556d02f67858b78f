"""`recovery-window`: the seconds a point-in-time restore of the plan can reach, and the gaps."""

from __future__ import annotations

from typing import Any

import typer

from platform_backup_cli.client import api, segment
from platform_backup_cli.plans import PlanRef, plan_id_of
from platform_backup_cli.render import JsonFlag, console, emit_json, fields, moment, say, table


def _lag(seconds: Any) -> str:
    return "-" if seconds is None else f"{float(seconds):.0f} s"


def recovery_window(ctx: typer.Context, plan_id: PlanRef = None, as_json: JsonFlag = False) -> None:
    """The plan's recovery windows (from a full backup through the archived binary log), the last
    recoverable time, the gaps with their reasons, and how far the archive trails."""
    client = api(ctx)
    answer = client.get(f"/v1/plans/{segment(plan_id_of(client, plan_id))}/recovery-window")
    if as_json:
        emit_json(answer)
        return
    out = console()
    out.print(
        fields(
            "Point-in-time recovery",
            [
                ("last recoverable", moment(answer.get("lastRecoverableTime"))),
                ("archive lag", _lag(answer.get("lagSeconds"))),
            ],
        )
    )
    if not answer["windows"]:
        say(
            "no recovery window yet: one opens with the first full backup taken while the "
            "binary log is archived"
        )
    else:
        columns = [("From", lambda w: moment(w["from"])), ("To", lambda w: moment(w["to"]))]
        out.print(table("Recovery windows", columns, answer["windows"]))
    if answer["gaps"]:
        columns = [
            ("From", lambda g: moment(g["from"])),
            ("To", lambda g: moment(g["to"]) if g.get("to") else "(no window since)"),
            ("Reason", lambda g: g["reason"]),
        ]
        out.print(table("Gaps", columns, answer["gaps"]))

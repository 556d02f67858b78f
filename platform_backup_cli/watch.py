"""Following a running job (a backup or a restore) with a live progress bar until it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from platform_backup_cli.client import ApiClient
from platform_backup_cli.render import console

Interval = Annotated[
    float, typer.Option(min=0.1, help="Seconds between polls of the job.", show_default=True)
]


@dataclass(frozen=True)
class Gauge:
    """What the bar shows of one poll of the job."""

    phase: str
    percent: float
    detail: str
    eta_seconds: float | None


def eta(seconds: float | None) -> str:
    return "ETA -" if seconds is None else f"ETA {timedelta(seconds=round(seconds))}"


def follow(
    client: ApiClient, path: str, gauge: Callable[[dict[str, Any]], Gauge], interval: float
) -> dict[str, Any]:
    """Polls the job until its status is final and returns its last state. The bar goes to
    stderr, so stdout holds only the outcome (or its JSON)."""
    job: dict[str, Any] = client.get(path)
    columns = (
        TextColumn("{task.description:<11}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TextColumn("{task.fields[eta]}"),
    )
    try:
        with Progress(*columns, console=console(stderr=True)) as progress:
            task = progress.add_task("", total=100.0, detail="", eta="")
            while True:
                shown = gauge(job)
                progress.update(
                    task,
                    description=shown.phase,
                    completed=shown.percent,
                    detail=shown.detail,
                    eta=eta(shown.eta_seconds),
                )
                if job.get("status") != "running":
                    return job
                time.sleep(interval)
                job = client.get(path)
    except KeyboardInterrupt:
        console(stderr=True).print(
            f"stopped watching; the job goes on: watch it again with its id {job.get('id')}"
        )
        raise typer.Exit(130) from None

"""The commands executions and restores share: list, show and watch a job the API runs."""

# No `from __future__ import annotations`: typer reads the commands' annotations at runtime,
# and JobRef is local to add_show_and_watch.

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from platform_backup_cli.client import ApiClient, CliError, api, segment
from platform_backup_cli.render import Column, JsonFlag, console, emit_json, print_page, say, warn
from platform_backup_cli.watch import Gauge, Interval, follow

Job = dict[str, Any]


@dataclass(frozen=True)
class JobKind:
    """What differs between executions and restores; everything else is in this module."""

    noun: str  # "execution": in messages and in the argument's name
    path: str  # "/v1/executions"
    title: str  # "Executions": the table's title
    columns: Sequence[Column]
    start_with: str  # the command that starts one, told when there is none yet
    gauge: Callable[[Job], Gauge]
    outcome: Callable[[ApiClient, Job], str]  # the client names what the job's ids refer to
    warnings: Callable[[Job], list[str]]  # printed on stderr before the outcome
    details: Callable[[Job], list[Any]]  # rich renderables of `show`

    def list_page(self, client: ApiClient, as_json: bool, **query: Any) -> None:
        print_page(client.get(self.path, **query), self.title, self.columns, as_json)

    def id_or_newest(self, client: ApiClient, job_id: str | None) -> str:
        if job_id is not None:
            return job_id
        newest = client.get(self.path, limit=1)["items"]
        if not newest:
            raise CliError(f"no {self.noun} yet: start one with `{self.start_with}`")
        return str(newest[0]["id"])

    def show(self, client: ApiClient, job_id: str | None, as_json: bool) -> None:
        job = client.get(f"{self.path}/{segment(self.id_or_newest(client, job_id))}")
        if as_json:
            emit_json(job)
            return
        out = console()
        for renderable in self.details(job):
            out.print(renderable)

    def finish(self, client: ApiClient, job: Job, as_json: bool) -> None:
        """Reports how the job ended; only one that succeeded exits 0."""
        for line in self.warnings(job):
            warn(line)
        if as_json:
            emit_json(job)
        else:
            say(self.outcome(client, job))
        if job.get("status") != "succeeded":
            raise typer.Exit(1)

    def watch(self, client: ApiClient, job_id: str, interval: float, as_json: bool) -> None:
        job = follow(client, f"{self.path}/{segment(job_id)}", self.gauge, interval)
        self.finish(client, job, as_json)


def add_show_and_watch(app: typer.Typer, kind: JobKind, show_help: str, watch_help: str) -> None:
    """`show [ID]` and `watch [ID]`, the id defaulting to the newest job."""
    # The metavar keeps the help naming the argument after the noun (execution_id, restore_id).
    JobRef = Annotated[
        str | None,
        typer.Argument(
            help=f"The {kind.noun}'s id (default: the newest).",
            show_default=False,
            metavar=f"{kind.noun}_id",
        ),
    ]

    def show(ctx: typer.Context, job_id: JobRef = None, as_json: JsonFlag = False) -> None:
        kind.show(api(ctx), job_id, as_json)

    def watch(
        ctx: typer.Context,
        job_id: JobRef = None,
        interval: Interval = 1.0,
        as_json: JsonFlag = False,
    ) -> None:
        client = api(ctx)
        kind.watch(client, kind.id_or_newest(client, job_id), interval, as_json)

    app.command("show", help=show_help)(show)
    app.command("watch", help=watch_help)(watch)

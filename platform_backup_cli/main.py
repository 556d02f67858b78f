"""`platform-backup`: the operator's command line for the console API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from platform_backup_cli import (
    backups,
    catalog,
    console_server,
    executions,
    plans,
    recovery,
    restores,
    storages,
)
from platform_backup_cli.client import DEFAULT_API, ApiClient, CliError
from platform_backup_cli.render import error


class _Cli(TyperGroup):
    """Every command's failure becomes one message on stderr and exit status 1."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CliError as exc:
            error(exc.lines())
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Cli,
    name="platform-backup",
    help="Back up and restore the platform database through its console API.",
    no_args_is_help=True,
    # Were a bug to raise, its traceback must not print the locals (request bodies, credentials).
    pretty_exceptions_show_locals=False,
)
app.add_typer(storages.app, name="storages")
app.command("quota")(storages.quota)
app.add_typer(plans.app, name="plan")
app.command("recovery-window")(recovery.recovery_window)
app.command("run")(executions.run)
app.add_typer(executions.app, name="executions")
app.add_typer(backups.app, name="backups")
app.add_typer(restores.app, name="restore")
app.add_typer(catalog.app, name="catalog")
app.command("console")(console_server.console)


@app.callback()
def connect(
    ctx: typer.Context,
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar="PLATFORM_BACKUP_API",
            help="The API's base URL; anything but this machine is SigV4-signed.",
        ),
    ] = DEFAULT_API,
) -> None:
    ctx.obj = ApiClient(api)


def main() -> None:
    app()

"""How answers reach the terminal: rich tables for people, the API's JSON for scripts."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
Limit = Annotated[int | None, typer.Option(help="Items per page (the API's limit).", min=1)]
NextToken = Annotated[str | None, typer.Option(help="The page after this token.")]

Column = tuple[str, Callable[[dict[str, Any]], Any]]


# Piped output (logs, the demo's transcript) is read later, not in an 80-column terminal.
PIPED_WIDTH = 160


def console(stderr: bool = False) -> Console:
    # A new one per call, so the width and stream are those of this invocation.
    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPED_WIDTH
    return out


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def size(value: Any) -> str:
    return decimal(int(value)) if isinstance(value, int) else "-"


_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_UNITS.update({f"{p}b": f for p, f in list(_UNITS.items()) if p not in ("", "b")})
_UNITS.update({f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgtp")})
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_size(value: str) -> int:
    """Bytes from what people write: 107374182400, 100GiB, 100 GB, 1.5TiB (GiB = 2^30)."""
    match = _SIZE.match(value.lower())
    if not match or match.group(2) not in _UNITS:
        raise typer.BadParameter(
            f"'{value}' is not a size: write bytes, or a number with a unit (100GiB, 500GB, 2TiB)"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def moment(value: Any) -> str:
    """An API time to the second, as people read it (the API keeps the microseconds)."""
    if not isinstance(value, str):
        return "-"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def table(title: str, columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> Table:
    grid = Table(title=title, title_justify="left")
    for index, (header, _) in enumerate(columns):
        # The first column is the id operators copy into the next command: keep it whole.
        grid.add_column(header, no_wrap=index == 0, overflow="fold")
    for row in rows:
        grid.add_row(*(text(get(row)) for _, get in columns))
    return grid


def print_page(page: dict[str, Any], title: str, columns: Sequence[Column], as_json: bool) -> None:
    if as_json:
        emit_json(page)
        return
    out = console()
    items = page.get("items", [])
    if not items:
        out.print(f"no {title.lower()}")
    else:
        out.print(table(title, columns, items))
    if page.get("nextToken"):
        out.print(f"more: repeat with --next-token {page['nextToken']}")


def fields(title: str, pairs: Sequence[tuple[str, Any]]) -> Table:
    grid = Table(title=title, title_justify="left", show_header=False, box=None)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(name, text(value))
    return grid


# Messages carry the API's text, which may hold brackets: never read them as rich markup.
def say(message: str) -> None:
    console().print(message, markup=False, soft_wrap=True)


def warn(message: str) -> None:
    console(stderr=True).print(message, style="yellow", markup=False, soft_wrap=True)


def error(lines: list[str]) -> None:
    message = "Error: " + "\n".join(lines)
    console(stderr=True).print(message, style="red", markup=False, soft_wrap=True)

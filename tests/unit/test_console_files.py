"""The console's static files, as the local gateway and `platform-backup console` serve them."""

from __future__ import annotations

import pytest

from platform_backup_cli import console_files


def test_the_console_page_and_its_assets_are_served() -> None:
    status, headers, body = console_files.serve("/console/")
    assert status == 200 and b'<script src="app.js">' in body
    assert ("Content-Type", "text/html; charset=utf-8") in headers
    assert console_files.serve("/console/app.js")[0] == 200
    assert console_files.serve("/console")[:2] == (301, [("Location", "/console/")])


@pytest.mark.parametrize(
    "path",
    ["/console/../console_files.py", "/console/x/app.js", "/console/.hidden", "/console/nope.js"],
)
def test_nothing_else_is(path: str) -> None:
    assert console_files.serve(path)[0] == 404

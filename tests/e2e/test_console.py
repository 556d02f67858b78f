"""The web console in a real browser (the machine's headless Chromium) against the local stack:
the whole lifecycle an operator does from it, with a screenshot of each page for review."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.e2e.http import Http
from tests.support.databases import sql

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "console-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # `make e2e` installs Debian's chromium; a missing browser is a failure, never a skip.
    assert shutil.which("chromium"), "chromium is missing: run `make chromium` (make e2e does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, stack: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.api_url)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS  # the session's summary prints where they are


@pytest.fixture
def cleanup(stack: Any) -> Iterator[dict[str, list[str]]]:
    """What the test made: the plan, storages and restored databases go when it ends."""
    made: dict[str, list[str]] = {"databases": []}
    yield made
    http = Http(stack.api_url)
    for plan in http.get("/v1/plans").body["items"]:
        if plan["name"].startswith("console-"):
            http.delete(f"/v1/plans/{plan['id']}")
    for name in made["databases"]:
        sql(f"DROP DATABASE IF EXISTS `{name}`")


def field_error(page: Page, field: str) -> str:
    return page.locator(f'[data-field="{field}"] .field-error').inner_text()


def choose(select: Locator, text: str) -> None:
    """Picks the option whose label begins with the text (labels go on with the free room)."""
    select.select_option(select.locator("option", has_text=text).get_attribute("value"))


def register(page: Page, name: str, role: str, bucket: str, capacity_gib: str) -> None:
    form = page.get_by_role("form", name="Register a storage")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Role").select_option(role)
    form.get_by_label("Bucket").fill(bucket)
    form.get_by_label("Capacity (authorized quota)").fill(capacity_gib)
    form.get_by_role("button", name="Register storage").click()
    expect(page.get_by_role("row", name=re.compile(name))).to_be_visible()


def test_the_whole_lifecycle_from_the_console(
    page: Page,
    stack: Any,
    platform_databases: list[str],
    shots: Path,
    cleanup: dict[str, list[str]],
) -> None:
    http = Http(stack.api_url)
    suffix = uuid.uuid4().hex[:6]
    s3 = stack.client("s3")
    for role in ("local", "remote"):
        s3.create_bucket(Bucket=f"console-{role}-{suffix}")
        s3.put_bucket_versioning(
            Bucket=f"console-{role}-{suffix}", VersioningConfiguration={"Status": "Enabled"}
        )

    # Storages: a bad bucket name shows the API's own message beside the bucket field
    page.goto("/console/#/storages")
    expect(page.get_by_role("heading", name="Storages", exact=True)).to_be_visible()
    register_form = page.get_by_role("form", name="Register a storage")
    register_form.get_by_label("Name").fill(f"console-primary-{suffix}")
    register_form.get_by_label("Bucket").fill("Not_A_Bucket")
    register_form.get_by_role("button", name="Register storage").click()
    expect(page.locator('[data-field="bucket"] .field-error')).not_to_be_empty()
    api_answer = http.post(
        "/v1/storages",
        {
            "name": "x",
            "role": "local",
            "bucket": "Not_A_Bucket",
            "region": "us-east-1",
            "prefix": "platform-db/",
            "capacityBytes": 100 * 2**30,
        },
    )
    assert api_answer.status == 400
    expected = next(d for d in api_answer.body["error"]["details"] if d["field"] == "bucket")
    assert field_error(page, "bucket") == expected["message"]
    page.screenshot(path=shots / "storages-error.png", full_page=True)
    # Then the two storages register, each with its capacity bar
    register_form.get_by_label("Bucket").fill(f"console-local-{suffix}")
    register_form.get_by_role("button", name="Register storage").click()
    expect(page.get_by_role("row", name=re.compile(f"console-primary-{suffix}"))).to_be_visible()
    register(page, f"console-remote-{suffix}", "remote", f"console-remote-{suffix}", "50")
    row = page.get_by_role("row", name=re.compile(f"console-remote-{suffix}"))
    expect(row).to_contain_text("50.0 GiB")
    page.screenshot(path=shots / "storages.png", full_page=True)

    # Plan: a bad retention value shows the API's message beside it; fixed, the plan is created
    page.get_by_role("link", name="Plan").click()
    form = page.get_by_role("form", name="Backup plan")
    form.get_by_label("Name", exact=True).fill(f"console-{suffix}")
    choose(form.get_by_label("Primary"), f"console-primary-{suffix}")
    form.get_by_label("Sync to remote backup storage").check()
    choose(form.get_by_label("Remote storage"), f"console-remote-{suffix}")
    expect(form.get_by_label("Remote storage")).to_contain_text("50.0 GiB available of 50.0 GiB")
    form.get_by_label("Backup cycle").select_option("daily")
    form.get_by_label("Execution time").fill("00:30")
    # A start time a year away (no scheduled run interferes), with no time zone: +08:00 is used
    year = time.gmtime().tm_year + 1
    form.get_by_label("Start time").fill(f"{year}-12-01T00:00:00+08:00")
    form.get_by_label("Keep (quantity or days)").last.fill("0")
    form.get_by_role("button", name="Create plan").click()
    expect(page.locator('[data-field="retention.local.value"] .field-error')).to_contain_text("1")
    page.screenshot(path=shots / "plan-error.png", full_page=True)
    form.get_by_label("Keep (quantity or days)").last.fill("7")
    form.get_by_role("button", name="Create plan").click()
    expect(page.locator("#plan-summary")).to_have_text("every day at 00:30, Etc/GMT-8")
    expect(page.get_by_role("list", name="Remote storage")).to_contain_text(
        f"console-remote-{suffix} (remote) — 50.0 GiB available of 50.0 GiB"
    )
    expect(
        page.get_by_role("listitem").filter(has_text=f"{year}-12-01T00:30:00+08:00")
    ).to_be_visible()
    page.screenshot(path=shots / "plan.png", full_page=True)

    # Run now: the bar moves to 100% and the row turns succeeded
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Executions")).to_be_visible()
    newest = page.locator("tbody tr").first
    bar = newest.get_by_role("progressbar")
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen.append(int(bar.get_attribute("aria-valuenow") or 0))
        if newest.locator(".exec-status").inner_text() != "running":
            break
        time.sleep(0.2)
    expect(newest.locator(".exec-status")).to_have_text("succeeded")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    assert seen == sorted(seen), f"the bar went back: {seen}"
    expect(newest).to_contain_text(f"console-primary-{suffix}")
    page.screenshot(path=shots / "executions.png", full_page=True)

    # Backups: the backup is in the list and in both charts
    backup = http.get("/v1/backups?limit=1").body["items"][0]
    page.get_by_role("link", name="Backups").click()
    expect(page.locator(f'tr[data-id="{backup["id"]}"]')).to_contain_text(
        f"console-primary-{suffix} (local)"
    )
    for chart in ("size", "duration"):
        expect(
            page.locator(f'[data-chart="{chart}"] rect[data-id="{backup["id"]}"]')
        ).to_have_count(1)
    page.get_by_role("link", name="last 90 days").click()
    expect(page.get_by_role("heading", name="Size and duration, last 90 days")).to_be_visible()
    page.screenshot(path=shots / "backups.png", full_page=True)

    # Restore: in place needs the plan's name typed; new databases restore and succeed
    page.locator(f'tr[data-id="{backup["id"]}"]').get_by_role(
        "link", name=re.compile("Restore")
    ).click()
    restore_form = page.get_by_role("form", name="Start a restore")
    restore_form.get_by_label("Restore into").select_option("in-place")
    replace = restore_form.get_by_role("button", name="Replace the live databases")
    expect(replace).to_be_disabled()
    restore_form.get_by_label(re.compile("Type the plan's name")).fill(f"console-{suffix}")
    expect(replace).to_be_enabled()
    restore_form.get_by_label("Restore into").select_option("new-database")
    restore_form.get_by_label("Database suffix").fill(f"_console{suffix}")
    cleanup["databases"] += [f"{name}_console{suffix}" for name in platform_databases]
    restore_form.get_by_role("button", name="Start restore").click()
    first = page.locator("tbody tr").first
    expect(first.locator(".restore-status")).to_have_text("succeeded", timeout=120_000)
    expect(first.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(first).to_contain_text(
        f"{platform_databases[0]} → {platform_databases[0]}_console{suffix}"
    )
    expect(first).to_contain_text("tables checked")
    page.screenshot(path=shots / "restores.png", full_page=True)
    assert sql(f"SHOW DATABASES LIKE '{platform_databases[0]}_console{suffix}'").strip()

    # In place: sent to the in-place route (its own IAM resource), after a safety backup
    page.get_by_role("link", name="Backups").click()
    page.locator(f'tr[data-id="{backup["id"]}"]').get_by_role(
        "link", name=re.compile("Restore")
    ).click()
    restore_form = page.get_by_role("form", name="Start a restore")
    restore_form.get_by_label("Restore into").select_option("in-place")
    restore_form.get_by_label(re.compile("Type the plan's name")).fill(f"console-{suffix}")
    with page.expect_request(lambda r: r.method == "POST" and "restores" in r.url) as sent:
        restore_form.get_by_role("button", name="Replace the live databases").click()
    assert sent.value.url.endswith(f"/v1/backups/{backup['id']}/in-place-restores")
    answer = sent.value.response()
    assert answer is not None and answer.status == 202
    row = page.locator(f'tr[data-id="{answer.json()["id"]}"]')
    expect(row.locator(".restore-status")).to_have_text("succeeded", timeout=180_000)
    expect(row).to_contain_text(f"{platform_databases[0]} → {platform_databases[0]}")
    in_place = http.get(f"/v1/restores/{answer.json()['id']}").body
    assert (in_place["target"]["mode"], bool(in_place["safetyBackupId"])) == ("in-place", True)


def test_the_console_reads_on_a_phone_and_by_keyboard(page: Page, shots: Path) -> None:
    # Given a phone's width
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/console/#/storages")
    expect(page.get_by_role("heading", name="Storages", exact=True)).to_be_visible()
    # Then nothing but the tables scrolls sideways
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=shots / "phone-storages.png", full_page=True)
    # And the pages are reached with the keyboard alone: skip link first, then the navigation
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(3):  # Storages, Plan, Executions
        page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Executions")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Executions")).to_be_visible()
    expect(page.get_by_role("link", name="Executions")).to_have_attribute("aria-current", "page")
    # And every form control has a label
    page.goto("/console/#/storages")
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input, select')].filter(el =>
             !el.labels.length && !el.getAttribute('aria-label')).map(el => el.name)"""
    )
    assert unlabelled == []


def test_an_unreachable_api_shows_a_banner(page: Page, stack: Any) -> None:
    page.route("**/v1/**", lambda route: route.abort())
    page.goto("/console/#/plan")
    expect(page.get_by_role("alert")).to_contain_text("The API cannot be reached")

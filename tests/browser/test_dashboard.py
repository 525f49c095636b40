"""The admin page in a real browser: headless Chromium (Debian's) driven by Playwright, against `scripts/dev.py`.

One dev server (embedded PostgreSQL, sandbox Game Platform) and one browser
page for the module; the tests run in file order, as an operator's session
would: sign in with the printed link, read the counts, pause and watch the
worker obey, run it, sync, retry and delete a failed job, read a job's detail,
then check accessibility (axe-core, from tests/browser/package.json) and the
375 px layout. Every test ends with no console error and no uncaught exception.

Chromium: `apt-get install chromium` (`.ci/run` does). Without it the module is
skipped with a message on a developer's machine, and fails under CI (`CI` set).
Set `DASHBOARD_SCREENSHOT=docs/dashboard.png` to write the page's screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.api import request
from tests.support.dev_server import DevProcess, dev_env

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
PAGE_PATH = "/dashboard/admin-tools/jobs"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.timeout(300)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "Chromium is not installed: apt-get install -y chromium (the browser tests drive Debian's Chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "Playwright is not installed: pip install -r requirements-dev.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


if os.environ.get("DATABASE_URL"):
    # The dev server brings its own embedded PostgreSQL; CI's second pass (DATABASE_URL set,
    # PostgreSQL 15) would only repeat the same run.
    pytest.skip("the browser tests run in the embedded-PostgreSQL pass only", allow_module_level=True)


class DevServer(DevProcess):
    """`scripts/dev.py` in the background (no schedules), with the page's URL, token and database."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, dev_env(PYTHONUNBUFFERED="1"), "--no-schedules", ready_timeout=180)

    @property
    def page_url(self) -> str:
        match = re.search(r"dashboard\s+(http\S+#token=\S+)", self.output)
        assert match, "dev.py printed no signed-in dashboard URL:\n" + self.output[-3000:]
        return match.group(1)

    @property
    def token(self) -> str:
        return self.page_url.split("#token=", 1)[1]

    @property
    def database_url(self) -> str:
        match = re.search(r"Operator CLI on this database: export DATABASE_URL=('[^']*'|\S+)", self.output)
        assert match, self.output[-3000:]
        return shlex.split(match.group(1))[0]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = request(self.port, method, path, body, {"Authorization": f"Bearer {self.token}"})
        assert response.status in (200, 201, 503), (path, response.status, response.raw[:500])
        return response.json


@pytest.fixture(scope="module")
def dev() -> Iterator[DevServer]:
    _chromium()
    _playwright()
    # A folder of its own rather than pytest's tmp_path: another pytest run on the machine
    # prunes old pytest-of-<user> folders, the embedded PostgreSQL's data folder included.
    data_dir = Path(tempfile.mkdtemp(prefix="jq-dashboard-"))
    try:
        server = DevServer(data_dir / "dev")
        yield server
        server.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


class Console:
    """Console errors and uncaught exceptions of the page.

    "Failed to load resource" lines are the browser's own network log of a
    non-2xx answer (a 404 for schedules before that API exists, a 503 health
    report); the page handles those answers, so they are kept apart, not errors.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.network: list[str] = []

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = message.text
        (self.network if text.startswith("Failed to load resource") else self.errors).append(text)

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture(scope="module")
def browser_page(dev: DevServer) -> Iterator[tuple[Any, Console]]:
    sync_playwright = _playwright()
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    console = Console()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        # No request leaves the machine: anything not on the dev server is refused and recorded.
        external: list[str] = []

        def guard(route: Any) -> None:
            url = route.request.url
            if url.startswith(dev.base_url) or url.startswith("data:"):
                route.continue_()
            else:
                external.append(url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.on("console", console.on_console)
        page.on("pageerror", console.on_page_error)
        yield page, console
        assert external == [], f"the page made external requests: {external}"
        context.close()
        browser.close()


@pytest.fixture
def page(browser_page: tuple[Any, Console]) -> Iterator[Any]:
    page, console = browser_page
    before = len(console.errors)
    yield page
    assert console.errors[before:] == [], "console errors"


def _sql(dev: DevServer, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dev.database_url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _tile_count(page: Any, status: str) -> str:
    return page.locator(f'.tile[data-status="{status}"] .tile-count').inner_text()


def _refresh(page: Any) -> None:
    page.get_by_role("button", name="Refresh", exact=True).click()


# -- the session, in order ---------------------------------------------------------------


def test_signs_in_with_the_printed_link_and_shows_the_counts(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    # Two jobs waiting, due in six hours: they stay pending through the whole session.
    later = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    for _ in range(2):
        dev.api(
            "POST",
            "/api/admin/jobs/create",
            {"taskType": "game_platform_sync", "payload": {"dryRun": True}, "runAt": later},
        )
    page.goto(dev.page_url)
    expect(page.locator("#dashboard")).to_be_visible()
    assert "#token=" not in page.url  # the token left the address bar for sessionStorage
    health = dev.api("GET", "/api/admin/job-queue/health")
    for status, count in health["queueCounts"].items():
        expect(page.locator(f'.tile[data-status="{status}"] .tile-count')).to_have_text(str(count))
    assert _tile_count(page, "pending") == "2"  # the dev server runs no schedule here (--no-schedules)
    expect(page.locator("#health-pill")).to_have_text(re.compile("Healthy"))

    # The tile filters the table.
    page.locator('.tile[data-status="pending"]').click()
    expect(page.locator('.tile[data-status="pending"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#filter-status")).to_have_value("pending")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(2)
    page.locator('.tile[data-status="pending"]').click()
    expect(page.locator("#filter-status")).to_have_value("")


def test_pausing_makes_the_worker_claim_nothing_until_resumed(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    job_id = dev.api("POST", "/api/admin/jobs/create", {"taskType": "game_platform_sync", "payload": {"dryRun": True}})[
        "jobId"
    ]
    page.get_by_label("Reason for pausing").fill("browser test maintenance")
    page.get_by_role("button", name="Pause processing").click()
    expect(page.get_by_role("button", name="Resume processing")).to_be_visible()
    expect(page.locator("#processing-state")).to_contain_text("browser test maintenance")
    assert dev.api("GET", "/api/admin/job-queue/health")["processingEnabled"] is False

    page.get_by_role("button", name="Run worker now").click()
    expect(page.locator("#run-report")).to_contain_text("Paused")
    assert dev.api("GET", f"/api/admin/job-queue/jobs?id={job_id}")["job"]["status"] == "pending"
    runs = _sql(dev, "select trigger_source, status from job_queue_invocations order by id desc limit 1")
    assert runs == [("admin_manual", "paused")]

    page.get_by_role("button", name="Resume processing").click()
    expect(page.get_by_role("button", name="Pause processing")).to_be_visible()
    page.get_by_role("button", name="Run worker now").click()
    expect(page.locator("#run-report")).to_contain_text("succeeded")
    assert dev.api("GET", f"/api/admin/job-queue/jobs?id={job_id}")["job"]["status"] == "succeeded"


def test_create_job_validates_the_payload_and_run_worker_now_shows_the_report(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    create = page.get_by_role("region", name="Create job")
    create.get_by_label("Task type").select_option("game_platform_sync")
    expect(create.get_by_label("Payload (JSON)")).to_have_value(re.compile('"dryRun": false'))
    create.get_by_label("Payload (JSON)").fill('{"dryRun": "yes"}')
    create.get_by_role("button", name="Create job").click()
    expect(page.locator("#create-status")).to_contain_text("payload.dryRun")

    create.get_by_label("Payload (JSON)").fill('{"dryRun": true}')
    create.get_by_role("button", name="Create job").click()
    expect(page.locator("#create-status")).to_contain_text("Created job")

    page.get_by_role("button", name="Run worker now").click()
    report = page.locator("#run-report")
    expect(report).to_contain_text("The worker ran 1 job: 1 succeeded, 0 failed")
    expect(report.locator(".badge-succeeded")).to_have_count(1)
    expect(page.locator("#recent-runs")).to_contain_text("admin_manual")


def test_full_sync_runs_the_sync_then_the_sweep_and_watches_them_finish(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    # A real (not dry) run against the sandbox vendor: a dry run records no sync run.
    expect(page.get_by_label("Dry run (report, write nothing)")).not_to_be_checked()
    page.get_by_role("button", name="Full sync").click()
    status = page.locator("#quick-status")
    expect(status).to_contain_text("Full sync, step 1 (sync): job")
    # The worker runs when the operator asks (or at the next cron tick): ask until both steps are done.
    for _ in range(20):
        if "step 2 (sweep): succeeded" in status.inner_text():
            break
        page.get_by_role("button", name="Run worker now").click()
        expect(page.get_by_role("button", name="Run worker now")).to_be_enabled()
        page.wait_for_timeout(1_000)  # let the page's poll see the finished job
    expect(status).to_contain_text("step 1 (sync): succeeded")
    expect(status).to_contain_text("step 2 (sweep): succeeded")
    expect(page.locator("#last-sync")).to_contain_text("completed")
    expect(page.locator("#last-sync dt", has_text="Competitors")).to_be_visible()  # the run's counts, by group
    types = [
        r[0] for r in _sql(dev, "select task_type from job_queue where status = 'succeeded' order by completed_at")
    ]
    assert types[-2:] == ["game_platform_sync", "game_platform_totals_sweep"]


def test_a_failed_job_is_retried_then_deleted_after_confirmation(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    # A payload its model refuses: the worker fails the job for good on its first run.
    job_id = str(
        _sql(dev, "select job_queue_enqueue('game_platform_sync', '{\"dryRun\": \"maybe\"}'::jsonb, now(), 3)")[0][0]
    )
    page.get_by_role("button", name="Run worker now").click()
    expect(page.locator("#run-report")).to_contain_text("1 failed")

    page.locator('.tile[data-status="failed"]').click()
    row = page.locator(f'#jobs-table tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible()
    row.get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("invalid payload for game_platform_sync")
    expect(dialog.get_by_role("button", name="Cancel", exact=True)).to_be_disabled()

    dialog.get_by_role("button", name="Retry", exact=True).click()
    expect(page.locator("#job-action-status")).to_contain_text("the job is now pending")
    expect(dialog.locator(".facts .badge").first).to_have_text("pending")
    assert dev.api("GET", f"/api/admin/job-queue/jobs?id={job_id}")["job"]["status"] == "pending"

    dialog.get_by_role("button", name="Delete", exact=True).click()
    confirm = page.get_by_role("dialog", name="Delete this job?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Keep job").click()
    expect(confirm).to_be_hidden()
    assert dev.api("GET", f"/api/admin/job-queue/jobs?id={job_id}")["job"]["status"] == "pending"

    dialog.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete job").click()
    expect(page.locator("#job-dialog")).to_be_hidden()
    expect(row).to_have_count(0)
    gone = request(
        dev.port, "GET", f"/api/admin/job-queue/jobs?id={job_id}", None, {"Authorization": f"Bearer {dev.token}"}
    )
    assert gone.status == 404
    page.locator('.tile[data-status="failed"]').click()  # clear the filter


def test_a_jobs_detail_shows_payload_output_attempts_and_times(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_role("region", name="Jobs", exact=True).get_by_label("Status").select_option("succeeded")
    first = page.locator("#jobs-table tbody tr").first
    job_id = first.get_attribute("data-job-id")
    first.get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    job = dev.api("GET", f"/api/admin/job-queue/jobs?id={job_id}")["job"]
    expect(dialog).to_contain_text(job["id"])
    expect(dialog).to_contain_text(f"{job['attempts']} of {job['maxAttempts']}")
    expect(dialog.locator("pre").first).to_contain_text(f'"dryRun": {json.dumps(job["payload"]["dryRun"])}')
    expect(dialog.locator("pre").nth(1)).to_contain_text(f'"status": "{job["output"]["status"]}"')  # the output
    for label in ("Run at", "Created", "Completed", "Locked at", "Lease expires"):
        expect(dialog.locator("dt", has_text=label)).to_be_visible()
    expect(dialog.get_by_role("button", name="Retry", exact=True)).to_be_disabled()
    page.keyboard.press("Escape")  # keyboard: Escape closes the dialog
    expect(page.locator("#job-dialog")).to_be_hidden()
    page.get_by_role("region", name="Jobs", exact=True).get_by_label("Status").select_option("")


def test_keyboard_alone_reaches_and_presses_the_controls(page: Any) -> None:
    from playwright.sync_api import expect

    page.locator('.tile[data-status="succeeded"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator("#filter-status")).to_have_value("succeeded")
    page.keyboard.press("Space")
    expect(page.locator("#filter-status")).to_have_value("")
    page.get_by_label("Jobs to claim (1–10)").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Run even while paused")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Run worker now")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#run-report")).to_contain_text("The worker ran")


def test_schedules_are_listed_and_switched_or_said_to_be_unavailable(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    panel = page.get_by_role("region", name="Schedules")
    listed = request(dev.port, "GET", "/api/admin/job-queue/schedules", None, {"Authorization": f"Bearer {dev.token}"})
    if listed.status == 404:  # the schedules API is not part of this build
        expect(panel).to_contain_text("not available")
        return
    schedules = listed.json["schedules"]
    assert schedules, "the schedules API lists no schedule"
    name = schedules[0]["name"]
    enabled = schedules[0]["enabled"]
    first, then = ("Disable", "Enable") if enabled else ("Enable", "Disable")
    panel.get_by_role("button", name=f"{first} schedule {name}").click()
    expect(page.locator("#toast")).to_contain_text(f"Schedule {name} {first.lower()}d")
    expect(panel.get_by_role("button", name=f"{then} schedule {name}")).to_be_visible()
    assert dev.api("GET", "/api/admin/job-queue/schedules")["schedules"][0]["enabled"] is (not enabled)
    panel.get_by_role("button", name=f"{then} schedule {name}").click()
    expect(panel.get_by_role("button", name=f"{first} schedule {name}")).to_be_visible()

    panel.get_by_label(f"Cron for {name}", exact=True).fill("7 4 * * *")
    panel.get_by_role("button", name=f"Save cron for {name}").click()
    expect(page.locator("#toast")).to_contain_text(f"Schedule {name}: cron set to 7 4 * * *")
    expect(panel.get_by_label(f"Cron for {name}", exact=True)).to_have_value("7 4 * * *")
    saved = next(s for s in dev.api("GET", "/api/admin/job-queue/schedules")["schedules"] if s["name"] == name)
    assert saved["cron"] == "7 4 * * *"
    panel.get_by_label(f"Cron for {name}", exact=True).fill("not a cron")
    panel.get_by_role("button", name=f"Save cron for {name}").click()
    expect(page.locator("#toast")).to_contain_text("invalid")
    panel.get_by_label(f"Cron for {name}", exact=True).fill("7 4 * * *")  # back to the saved value


def _axe(page: Any) -> list[dict[str, Any]]:
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` in {HERE}"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_no_serious_or_critical_accessibility_violations(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    assert _axe(page) == []
    page.locator("#jobs-table tbody tr").first.get_by_role("button").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert _axe(page) == []  # with the job dialog open
    page.get_by_role("button", name="Close").click()

    shot = os.environ.get("DASHBOARD_SCREENSHOT")
    if shot:
        page.evaluate("window.scrollTo(0, 0)")
        _refresh(page)
        expect(page.locator("#updated-at")).to_contain_text("Updated")
        page.evaluate("document.getElementById('toast').classList.remove('shown')")
        expect(page.locator("#toast")).to_have_css("opacity", "0")
        page.screenshot(path=str(ROOT / shot), full_page=True)


def test_works_at_375_px_wide(page: Any) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 375, "height": 812})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page scrolls sideways at 375 px ({width} px wide)"
        for name in ("Run worker now", "Pause processing", "Full sync", "Create job"):
            button = page.get_by_role("button", name=name)
            expect(button).to_be_visible()
            box = button.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 375, name
        assert _axe(page) == []
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_a_bad_token_sends_the_operator_back_to_sign_in(dev: DevServer, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto("about:blank")  # a new document: the same URL with another hash would not reload
    page.goto(f"{dev.base_url}{PAGE_PATH}#token=not-a-token-{uuid.uuid4()}")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#sign-in-reason")).to_contain_text("Sign in again")
    # No Supabase configured locally: email sign-in says why, the token form works.
    expect(page.locator("#password-note")).to_contain_text("SUPABASE_URL")
    page.get_by_label("Access token").fill(dev.token)
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#dashboard")).to_be_visible()
    assert json.loads(page.evaluate("JSON.stringify(Object.keys(sessionStorage))")) == ["jobQueue.adminToken"]

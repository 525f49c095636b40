"""The dev server's own pages, its access log, its ports and the commands its banner prints."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.openapi import build_openapi
from scripts import dev
from scripts.devserver import pages
from scripts.devserver.banner import render_banner
from scripts.devserver.database import DevDatabase
from scripts.devserver.routes import DevHttpServer, RouteTable
from scripts.devserver.secrets import GENERATED, LocalSecret
from tests.support.api import request

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served() -> Iterator[tuple[int, list[str]]]:
    """The dev router over the real api/ folder, its access log collected."""
    lines: list[str] = []
    server = DevHttpServer(("127.0.0.1", 0), RouteTable(ROOT), access_log=lines.append)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], lines
    finally:
        server.shutdown()
        server.server_close()


def test_the_index_links_the_admin_page_the_api_reference_and_health(served) -> None:
    port, _ = served
    answer = request(port, "GET", "/")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.raw.decode()
    for link in ("/dashboard/admin-tools/jobs", "/docs", "/openapi.json", "/api/admin/job-queue/health"):
        assert f'href="{link}"' in page, link
    assert 'href="/api/jobs/run"' in page  # every route is listed


def test_openapi_json_is_the_description_built_from_the_code(served) -> None:
    port, _ = served
    answer = request(port, "GET", "/openapi.json")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json == build_openapi()


def test_docs_renders_redoc_over_openapi_json_or_says_how_to_get_it(served, monkeypatch) -> None:
    port, _ = served
    page = request(port, "GET", "/docs").raw.decode()
    if pages.REDOC_BUNDLE.exists():
        assert 'spec-url="/openapi.json"' in page
        bundle = request(port, "GET", "/docs/redoc.standalone.js")
        assert bundle.status == 200
        assert bundle.headers["content-type"].startswith("text/javascript")
    monkeypatch.setattr(pages, "REDOC_BUNDLE", ROOT / "no" / "such" / "file.js")
    missing = request(port, "GET", "/docs").raw.decode()
    assert "npm ci" in missing
    assert 'href="/openapi.json"' in missing
    assert request(port, "GET", "/docs/redoc.standalone.js").status == 404


def test_the_pages_answer_only_get_and_head(served) -> None:
    port, _ = served
    answer = request(port, "POST", "/", body={})
    assert (answer.status, answer.headers["allow"]) == (405, "GET, HEAD")
    assert request(port, "HEAD", "/openapi.json").raw == b""


def test_every_request_leaves_one_access_log_line(served) -> None:
    port, lines = served
    assert request(port, "GET", "/api/jobs/run?limit=1").status == 401
    assert request(port, "POST", "/api/jobs/run", body=b"{oops").status == 401
    assert request(port, "GET", "/api/nope").status == 404
    assert request(port, "GET", "/").status == 200
    # A line is written once the handler has finished, just after the client has its answer.
    deadline = time.monotonic() + 10
    while len(lines) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    pattern = re.compile(r"^(GET|POST) (\S+) (\d{3}) \d+ ms$")
    assert sorted(pattern.match(line).groups() for line in lines) == sorted(  # type: ignore[union-attr]
        [
            ("GET", "/api/jobs/run", "401"),
            ("POST", "/api/jobs/run", "401"),
            ("GET", "/api/nope", "404"),
            ("GET", "/", "200"),
        ]
    )


def test_once_listens_on_a_free_port_of_its_own() -> None:
    parse = dev.build_parser().parse_args
    assert dev.listen_port(parse(["--once"])) == 0
    assert dev.listen_port(parse([])) == dev.DEFAULT_PORT == 3000
    assert dev.listen_port(parse(["--once", "--port", "8080"])) == 8080


def _banner(database: DevDatabase) -> str:
    table = RouteTable(ROOT)
    secrets = {n: LocalSecret(n, f"dev-{n.lower()}", False) for n in GENERATED}
    return render_banner(
        base_url="http://127.0.0.1:3000",
        database=database.description,
        cli_line=dev.cli_hint(database, ROOT / ".dev", with_sandbox=True),
        migrations_applied=[],
        game_platform="sandbox",
        seed_note="kept",
        routes=table.routes(),
        route_errors={},
        secrets=secrets,
        admin=None,
        admin_note="none",
        crons=[],
        skipped_schedules=[],
    )


def test_pasting_every_printed_curl_in_order_leaves_the_queue_running() -> None:
    banner = _banner(DevDatabase("postgresql://x/jobqueue_dev", embedded=True, created=False))
    curls = [line.strip() for line in banner.splitlines() if line.strip().startswith("curl ")]
    toggles = [json.loads(re.search(r"-d '(.*)'$", c).group(1)) for c in curls if "/job-queue/toggle" in c]  # type: ignore[union-attr]
    assert toggles == [{"enabled": False, "reason": "maintenance"}, {"enabled": True}]
    pause = next(i for i, c in enumerate(curls) if "/job-queue/toggle" in c)
    assert '{"enabled": true}' in curls[pause + 1], "the pause is undone right after it"


def test_the_banner_says_how_to_run_the_cli_on_this_database(monkeypatch) -> None:
    embedded = _banner(DevDatabase("postgresql://x/jobqueue_dev", embedded=True, created=False))
    assert re.search(r"no variables needed: (\.venv/bin/)?python scripts/jobs\.py status", embedded)
    monkeypatch.setenv("GAME_PLATFORM_API_BASE_URL", "http://127.0.0.1:4100/integrations/syned/v1")
    monkeypatch.setenv("GAME_PLATFORM_API_TOKEN", "dev-token")
    elsewhere = dev.cli_hint(
        DevDatabase("postgresql://x/jobqueue_dev", embedded=True, created=False), Path("/tmp/other"), True
    )
    assert re.fullmatch(
        r"Operator CLI on this database: export DATABASE_URL=postgresql://x/jobqueue_dev "
        r"GAME_PLATFORM_API_BASE_URL=http://127\.0\.0\.1:4100/integrations/syned/v1 "
        r"GAME_PLATFORM_API_TOKEN=dev-token; (\.venv/bin/)?python scripts/jobs\.py status",
        elsewhere,
    )

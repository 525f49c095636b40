"""The admin page's static files: what Vercel and the dev server serve at /dashboard/admin-tools/jobs."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.devserver.routes import DevHttpServer, RouteTable
from scripts.devserver.static import resolve_public_file
from tests.support.api import request

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "public"
PAGE_DIR = PUBLIC / "dashboard" / "admin-tools" / "jobs"
PAGE_PATH = "/dashboard/admin-tools/jobs"


@pytest.fixture
def dev_http() -> Iterator[int]:
    server = DevHttpServer(("127.0.0.1", 0), RouteTable(ROOT))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_page_is_served_at_its_path_with_and_without_a_trailing_slash(dev_http):
    for path in (PAGE_PATH, PAGE_PATH + "/", PAGE_PATH + "/index.html"):
        response = request(dev_http, "GET", path)
        assert response.status == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.raw == (PAGE_DIR / "index.html").read_bytes()


def test_its_modules_and_styles_are_served_with_their_types(dev_http):
    js = request(dev_http, "GET", PAGE_PATH + "/app.js")
    assert js.status == 200
    assert js.headers["content-type"].startswith("text/javascript")
    css = request(dev_http, "GET", PAGE_PATH + "/styles.css")
    assert css.headers["content-type"].startswith("text/css")
    assert request(dev_http, "HEAD", PAGE_PATH + "/app.js").raw == b""


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/admin-tools/jobs/../../../lib/settings.py",
        "/dashboard/admin-tools/jobs/%2e%2e/%2e%2e/%2e%2e/vercel.json",
        "/../README.md",
        "/.gitignore",
        "/dashboard/admin-tools/jobs/missing.js",
    ],
)
def test_nothing_outside_public_or_unknown_is_served(dev_http, path):
    response = request(dev_http, "GET", path)
    assert response.status == 404, path
    assert response.json["error"] == "not_found"


def test_static_files_answer_get_and_head_only_and_api_routes_stay_api_routes(dev_http):
    assert request(dev_http, "POST", PAGE_PATH, body={}).status == 405
    api = request(dev_http, "GET", "/api/no-such-endpoint")
    assert api.status == 404
    assert "routes" in api.json  # the api router's 404, naming the routes


def test_resolving_stays_inside_public(tmp_path):
    (tmp_path / "public" / "a").mkdir(parents=True)
    (tmp_path / "public" / "a" / "index.html").write_text("<p>a</p>")
    (tmp_path / "secret.html").write_text("no")
    public = tmp_path / "public"
    assert resolve_public_file(public, "/a") == (public / "a" / "index.html").resolve()
    assert resolve_public_file(public, "/../secret.html") is None
    assert resolve_public_file(public, "/a/../../secret.html") is None


def test_the_page_is_small_and_loads_nothing_from_elsewhere():
    files = [p for p in PAGE_DIR.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 100 * 1024
    for path in files:
        text = path.read_text()
        # No CDN, font host or analytics: the only absolute URL the page builds is the
        # configured Supabase Auth one, from /api/admin/config.
        assert not re.search(r"(?<![\w.])(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), path.name
        assert "@import" not in text, path.name


def test_the_page_refers_to_its_files_by_absolute_path():
    """At /dashboard/admin-tools/jobs (no slash) a relative `app.js` would resolve one folder up."""
    html = (PAGE_DIR / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"#][^"]*)"', html):
        if ref.startswith("data:"):
            continue
        assert ref.startswith(PAGE_PATH + "/"), ref
        assert (PUBLIC / ref.lstrip("/")).is_file(), ref

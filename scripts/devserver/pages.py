"""The dev server's own pages: `/` (an index), `/docs` (the API reference, Redoc) and `/openapi.json`.

None of this is deployed. `/openapi.json` is built from the code at each
request (`lib.openapi`), so an endpoint added to the catalog shows at once. Redoc
comes from npm at build time (`make dev` runs `npm ci` in
`scripts/devserver/web/`) and is served from there; without it `/docs` says how
to get it.
"""

from __future__ import annotations

import html
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lib.http import REQUEST_READ_TIMEOUT_SECONDS

WEB_DIR = Path(__file__).resolve().parent / "web"
REDOC_BUNDLE = WEB_DIR / "node_modules" / "redoc" / "bundles" / "redoc.standalone.js"
ADMIN_PAGE = "/dashboard/admin-tools/jobs"
HEALTH = "/api/admin/job-queue/health"
PAGE_PATHS = frozenset({"/", "/index.html", "/docs", "/docs/", "/docs/redoc.standalone.js", "/openapi.json"})

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1d232a}"
    "a{color:#0b5cad}code{background:#f1f3f5;padding:0 .25rem;border-radius:3px}li{margin:.4rem 0}"
    "small{color:#5a6570}"
)


def index_html(routes: list[tuple[str, list[str]]]) -> str:
    """The index: the admin page, the API reference, health, and every route served."""
    rows = "".join(
        f'<li><code>{html.escape("/".join(methods))}</code> <a href="{html.escape(path)}">{html.escape(path)}</a></li>'
        for path, methods in routes
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Job queue dev server</title><style>{_STYLE}</style></head>
<body>
<h1>Job queue dev server</h1>
<ul>
<li><a href="{ADMIN_PAGE}">Admin page</a> <small>{ADMIN_PAGE}: the dashboard's job queue tools</small></li>
<li><a href="/docs">API reference</a> <small>rendered from <a href="/openapi.json">/openapi.json</a>
 (OpenAPI 3.1)</small></li>
<li><a href="{HEALTH}">Health</a> <small>needs <code>x-job-runner-secret</code> or an admin token:
 the dev server printed a ready curl command for it</small></li>
</ul>
<h2>Routes</h2>
<ul>{rows}</ul>
<p><small>Local development only; none of these pages is deployed.</small></p>
</body></html>
"""


def docs_html() -> str:
    if not REDOC_BUNDLE.exists():
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API reference</title><style>{_STYLE}</style></head>
<body><h1>API reference</h1>
<p>Redoc is not installed. <code>make dev</code> installs it when <code>npm</code> is available
(or run <code>npm ci</code> in <code>scripts/devserver/web/</code>), then reload this page.</p>
<p>The description itself: <a href="/openapi.json">/openapi.json</a> (also committed as
<code>docs/openapi.json</code>).</p></body></html>
"""
    return """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference: job-processing bundle</title></head>
<body><redoc spec-url="/openapi.json"></redoc><script src="/docs/redoc.standalone.js"></script></body></html>
"""


def openapi_json() -> bytes:
    from lib.openapi import render

    return render().encode()


class DevPages(BaseHTTPRequestHandler):
    """Answers the paths in PAGE_PATHS (GET and HEAD only)."""

    server: Any  # the DevHttpServer: its route table lists what the index shows
    timeout = REQUEST_READ_TIMEOUT_SECONDS  # as the api handlers: a half-sent request frees its thread

    def _page(self) -> tuple[int, str, bytes]:
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            routes = [(route.path, route.methods) for route in self.server.table.routes()]
            return 200, "text/html; charset=utf-8", index_html(routes).encode()
        if path in ("/docs", "/docs/"):
            return 200, "text/html; charset=utf-8", docs_html().encode()
        if path == "/openapi.json":
            return 200, "application/json", openapi_json()
        if path == "/docs/redoc.standalone.js" and REDOC_BUNDLE.exists():
            return 200, "text/javascript; charset=utf-8", REDOC_BUNDLE.read_bytes()
        body = json.dumps({"error": "not_found", "message": f"Nothing is served at {path}."}).encode()
        return 404, "application/json", body

    def _answer(self) -> None:
        if self.command not in ("GET", "HEAD"):
            body = json.dumps({"error": "method_not_allowed", "message": "Use GET."}).encode()
            status, content_type = 405, "application/json"
        else:
            status, content_type, body = self._page()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == 405:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """The dev server writes its own access log."""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer

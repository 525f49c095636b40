"""Serve `public/` as Vercel does for a zero-config project: the dashboard page's static files.

A path maps to the file of the same name under `public/`, and a folder to its
`index.html` (`/dashboard/admin-tools/jobs` and `/dashboard/admin-tools/jobs/`
both answer `public/dashboard/admin-tools/jobs/index.html`). Nothing outside
`public/` is ever served: a path that climbs out of it, a dotfile or an unknown
file type answers 404.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from lib.http import REQUEST_READ_TIMEOUT_SECONDS

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


def resolve_public_file(public_dir: Path, url_path: str) -> Path | None:
    """The file under `public_dir` that serves `url_path`, or None."""
    parts = [p for p in unquote(url_path).split("/") if p]
    if any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    root = public_dir.resolve()
    candidate = root.joinpath(*parts).resolve() if parts else root
    if candidate != root and root not in candidate.parents:
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    if not candidate.is_file() or candidate.suffix not in CONTENT_TYPES:
        return None
    return candidate


class StaticFiles(BaseHTTPRequestHandler):
    """GET and HEAD of files under `public/`; other methods 405; unknown paths 404 (JSON, like the api routes)."""

    public_dir: ClassVar[Path]
    protocol_version = "HTTP/1.0"
    timeout = REQUEST_READ_TIMEOUT_SECONDS  # as the api handlers: a half-sent request frees its thread

    def _file(self) -> None:
        path = resolve_public_file(self.public_dir, urlsplit(self.path).path)
        if path is None:
            self._json(404, {"error": "not_found", "message": f"Nothing is served at {urlsplit(self.path).path}."})
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES[path.suffix])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _refuse(self) -> None:
        self._json(405, {"error": "method_not_allowed", "message": "Static files answer GET and HEAD only."})

    def _json(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 405:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    do_GET = do_HEAD = _file
    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse


def static_handler(public_dir: Path) -> type[StaticFiles]:
    return type("PublicFiles", (StaticFiles,), {"public_dir": public_dir})

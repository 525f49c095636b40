"""Serve every file under `api/` at its Vercel route, through the file's own `handler` class.

Vercel maps `api/a/b-c.py` to `/api/a/b-c` (and `api/a/index.py` to `/api/a`),
loads the file by path and hands each request to its `handler`, a
`BaseHTTPRequestHandler` subclass. The dev server does the same on one port: it
peeks at the request line (without consuming it) to find the route, then lets
that route's class read and answer the request from the socket. Routes are
discovered from the folder, so a new endpoint file needs no registration; a
request for an unknown path rescans the folder once before answering 404.
Paths outside `/api/` are the static files under `public/` (`static.py`), as
Vercel serves them.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from lib.http import REQUEST_READ_TIMEOUT_SECONDS, VercelHandler
from scripts.devserver.pages import PAGE_PATHS, DevPages
from scripts.devserver.static import static_handler
from scripts.local_http import LocalHTTPServer

MAX_REQUEST_LINE = 8192


def route_of(api_dir: Path, path: Path) -> str:
    """The URL path Vercel serves `path` at."""
    relative = path.relative_to(api_dir.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "index" and len(parts) > 1:
        parts.pop()
    return "/" + "/".join(parts)


def discover_api_files(api_dir: Path) -> dict[str, Path]:
    """Route → file for each servable `.py` under `api/` (Vercel skips names starting with _ or .)."""
    routes: dict[str, Path] = {}
    for path in sorted(api_dir.rglob("*.py")):
        relative = path.relative_to(api_dir)
        if any(part.startswith(("_", ".")) for part in relative.parts):
            continue
        routes[route_of(api_dir, path)] = path
    return routes


def load_api_module(path: Path, root: Path) -> ModuleType:
    """Import an api file by path, as Vercel's runtime does (hyphenated names included)."""
    dotted = path.relative_to(root).with_suffix("").as_posix().replace("/", "_").replace("-", "_")
    spec = importlib.util.spec_from_file_location(f"devserver_{dotted}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Route:
    path: str
    file: Path
    handler: type[BaseHTTPRequestHandler]

    @property
    def methods(self) -> list[str]:
        """The methods the endpoint serves.

        A `lib.http.VercelHandler` answers every method (405 for those it does
        not serve) and lists the served ones in `routes`; any other class
        serves what it defines (Vercel answers 501 for the rest).
        """
        if issubclass(self.handler, VercelHandler) and self.handler.routes:
            return sorted(self.handler.routes)
        return sorted(name[3:] for name in dir(self.handler) if name.startswith("do_"))


def load_route(path: str, file: Path, root: Path) -> Route:
    module = load_api_module(file, root)
    handler = getattr(module, "handler", None)
    if not (isinstance(handler, type) and issubclass(handler, BaseHTTPRequestHandler)):
        raise TypeError(f"{file.relative_to(root)} defines no `handler` (a BaseHTTPRequestHandler subclass)")
    return Route(path, file, handler)


class RouteTable:
    """The api folder's routes, loaded once and rescanned on a miss."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.api_dir = root / "api"
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self.errors: dict[str, str] = {}
        self._failed_mtimes: dict[str, float] = {}  # a broken file is retried once it changes
        self.rescan()

    def rescan(self) -> None:
        with self._lock:
            for route, file in discover_api_files(self.api_dir).items():
                if route in self._routes:
                    continue
                mtime = file.stat().st_mtime
                if self._failed_mtimes.get(route) == mtime:
                    continue
                try:
                    self._routes[route] = load_route(route, file, self.root)
                except Exception as exc:  # noqa: BLE001 - a broken file is reported, the others are served
                    self.errors[route] = f"{type(exc).__name__}: {exc}"
                    self._failed_mtimes[route] = mtime
                else:
                    self.errors.pop(route, None)
                    self._failed_mtimes.pop(route, None)

    def routes(self) -> list[Route]:
        with self._lock:
            return sorted(self._routes.values(), key=lambda r: r.path)

    def find(self, path: str) -> Route | None:
        route = self._routes.get(path.rstrip("/") or "/")
        if route is None:
            self.rescan()
            route = self._routes.get(path.rstrip("/") or "/")
        return route


class _NotFound(BaseHTTPRequestHandler):
    """404 in the bundle's error shape, naming the routes that exist."""

    server: DevHttpServer
    timeout = REQUEST_READ_TIMEOUT_SECONDS  # as the api handlers: a half-sent request frees its thread

    def _answer(self) -> None:
        known = [r.path for r in self.server.table.routes()]
        body = json.dumps(
            {"error": "not_found", "message": f"No api file serves {urlsplit(self.path).path}.", "routes": known}
        ).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer


class _AccessLogged(BaseHTTPRequestHandler):
    """Logs one line per request through the server's `access_log`: method, path, status, milliseconds.

    The bundle's handlers keep the stdlib's own access log silent (their JSON
    logs are what production sees); locally a 400 or 404 should still leave a trace.
    """

    server: DevHttpServer
    _status: int | None = None

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def handle_one_request(self) -> None:
        started = time.monotonic()
        self._status = None
        super().handle_one_request()
        command = getattr(self, "command", None)
        if command and self._status is not None and self.server.access_log is not None:
            elapsed = (time.monotonic() - started) * 1000
            self.server.access_log(f"{command} {urlsplit(self.path).path} {self._status} {elapsed:.0f} ms")


@functools.cache
def _one_request_per_connection(handler: type[BaseHTTPRequestHandler]) -> type[BaseHTTPRequestHandler]:
    """The same class, answering one request per connection, with an access log line.

    Routing happens per connection; a kept-alive connection could otherwise carry
    a request for another route into this class. Vercel's edge owns connections in
    production, so this changes nothing the handler can observe.
    """
    return type(handler.__name__, (_AccessLogged, handler), {"protocol_version": "HTTP/1.0"})


def peek_request_target(connection: socket.socket, timeout: float = 10.0) -> str | None:
    """The request-target of the request waiting on `connection`, read without consuming it."""
    connection.settimeout(timeout)
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while time.monotonic() < deadline:
            data = connection.recv(MAX_REQUEST_LINE, socket.MSG_PEEK)
            if not data or b"\n" in data or len(data) >= MAX_REQUEST_LINE:
                break
            time.sleep(0.005)
    except OSError:
        return None
    finally:
        connection.settimeout(None)
    parts = data.split(b"\n", 1)[0].split()
    return parts[1].decode("latin-1") if len(parts) >= 2 else None


class DevHttpServer(LocalHTTPServer):
    """One port for every api file; each request is answered by its route's own handler class."""

    def __init__(
        self, address: tuple[str, int], table: RouteTable, *, access_log: Callable[[str], None] | None = None
    ) -> None:
        self.table = table
        self.access_log = access_log
        self.static = static_handler(table.root / "public")
        super().__init__(address, _NotFound)

    def finish_request(self, request: Any, client_address: Any) -> None:
        target = peek_request_target(request)
        path = urlsplit(target).path if target else None
        handler: type[BaseHTTPRequestHandler]
        if path in PAGE_PATHS:  # the dev server's own pages: /, /docs, /openapi.json
            handler = DevPages
        elif path is not None and path != "/api" and not path.startswith("/api/"):
            handler = self.static
        else:
            route = self.table.find(path) if path else None
            handler = route.handler if route else _NotFound
        _one_request_per_connection(handler)(request, client_address, self)

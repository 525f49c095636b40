"""Serve api/ files through their real handler classes over a local HTTP server.

Vercel loads an api file by path (its name may hold hyphens) and serves its
`handler` class; these helpers do the same, then talk to it over real HTTP
(`request`, `ApiResponse`: scripts/local_http.py's raw client).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from lib.jobs.registry import TaskRegistry
from scripts.local_http import ApiResponse, LocalHTTPServer, request

ROOT = Path(__file__).resolve().parents[2]


def load_api_module(relative_path: str) -> Any:
    """Import `api/...py` by path, as Vercel's runtime does."""
    path = ROOT / relative_path
    name = "api_" + relative_path.replace("/", "_").replace("-", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serving(handler: Any, registry: TaskRegistry | None) -> Any:
    """An api file's handler class serving `registry`'s task types (the default ones when None)."""
    if registry is None:
        return handler
    return type(handler.__name__, (handler,), {"registry": registry})


class ApiServer:
    """One api file served on 127.0.0.1 in a background thread, with the task types of `registry`."""

    def __init__(
        self, relative_path: str, *, registry: TaskRegistry | None = None, read_timeout: float | None = None
    ) -> None:
        self.module = load_api_module(relative_path)
        handler = serving(self.module.handler, registry)
        if read_timeout is not None:
            handler = type(handler.__name__, (handler,), {"timeout": read_timeout})
        self.server = LocalHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.route = "/" + relative_path.removesuffix(".py")
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def request(
        self,
        method: str = "GET",
        *,
        query: str = "",
        body: bytes | str | dict[str, Any] | list[Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> ApiResponse:
        return request(self.port, method, self.route + (f"?{query}" if query else ""), body, headers, timeout)

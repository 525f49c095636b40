"""The HTTP server that serves handler classes locally (the dev server, the tests, the benchmarks), and a raw client.

`socketserver` listens with a backlog of 5: under a burst of 20 concurrent
clients 1–2% of connections were reset before a thread could accept them. The
request read timeout itself is the handler's (`lib.http`), so it holds wherever
a handler is served.

`request()` sends one request exactly as given (the tests use it to send what
a well-behaved client would not; the Vercel check, to ask the dev server).
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any


class LocalHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a real listen backlog and threads that never block exit."""

    # The kernel caps it at net.core.somaxconn (4096 on current Linux).
    request_queue_size = 1024
    daemon_threads = True


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> ApiResponse:
    """A raw HTTP request to 127.0.0.1: headers are sent exactly as given (a given Host replaces the default one)."""
    if isinstance(body, dict | list):
        data: bytes | None = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        skip_host = any(name.lower() == "host" for name in headers or {})
        conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        return ApiResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()

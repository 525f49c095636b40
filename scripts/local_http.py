"""The HTTP server that serves handler classes locally: the dev server, the tests, the benchmarks.

`socketserver` listens with a backlog of 5: under a burst of 20 concurrent
clients 1–2% of connections were reset before a thread could accept them. The
request read timeout itself is the handler's (`lib.http`), so it holds wherever
a handler is served.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LocalHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a real listen backlog and threads that never block exit."""

    # The kernel caps it at net.core.somaxconn (4096 on current Linux).
    request_queue_size = 1024
    daemon_threads = True

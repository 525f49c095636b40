"""scripts/local_http.py: the server behind the dev server and every test server holds a burst of clients."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

from scripts.devserver.routes import DevHttpServer
from scripts.local_http import LocalHTTPServer
from tests.support.api import ApiServer


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3):
            return True
    except OSError:
        return False


def test_a_burst_of_connections_waits_in_the_backlog_instead_of_being_refused():
    """Nothing accepts while 64 clients connect: every one must still be queued by the kernel.

    socketserver's default backlog of 5 let about 6 in; the rest were dropped.
    """
    server = LocalHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(_connects, [server.server_address[1]] * 64))
    finally:
        server.server_close()
    assert all(results), f"{results.count(False)} of 64 connections were not queued"


def test_the_dev_server_and_test_servers_use_it(app_env):
    assert issubclass(DevHttpServer, LocalHTTPServer)
    api = ApiServer("api/jobs/run.py")
    try:
        assert isinstance(api.server, LocalHTTPServer)
    finally:
        api.close()

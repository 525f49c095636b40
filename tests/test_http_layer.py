"""lib/http.py through a real handler: framing, limits and error shapes every endpoint shares."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.api import load_api_module, request
from tests.support.secrets import runner_headers


def test_head_is_405_without_a_body(worker_api):
    response = worker_api.request("HEAD", headers=runner_headers())
    assert response.status == 405
    assert response.raw == b""


def test_non_numeric_content_length_is_a_400(worker_api):
    with socket.create_connection(("127.0.0.1", worker_api.port)) as conn:
        conn.sendall(b"POST /api/jobs/run HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n")
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
        reply = b"".join(chunks).decode()
    assert reply.startswith("HTTP/1.0 400")
    assert '"error":"invalid_request"' in reply


def test_body_and_query_together_are_refused(worker_api, sql):
    response = worker_api.request("POST", query="limit=1", body={"limit": 2}, headers=runner_headers())
    assert response.status == 400
    assert "not both" in response.json["message"]


def test_non_utf8_body_is_a_400(worker_api):
    response = worker_api.request("POST", body=b"\xff\xfe{}", headers=runner_headers())
    assert response.status == 400
    assert response.json["error"] == "invalid_json"


def test_form_encoded_content_type_still_parses_json(worker_api):
    """curl -d sends application/x-www-form-urlencoded unless told otherwise."""
    headers = {**runner_headers(), "Content-Type": "application/x-www-form-urlencoded"}
    response = worker_api.request("POST", body=b'{"limit": 1}', headers=headers)
    assert response.status == 200


def test_errors_have_the_contract_shape(worker_api):
    response = worker_api.request("POST", body={"limit": 0}, headers=runner_headers())
    assert set(response.json) == {"error", "message", "details"}
    assert response.headers["cache-control"] == "no-store"


def test_server_header_is_the_name_alone(worker_api):
    response = worker_api.request("GET")
    assert response.headers["server"] == "job-queue"


def _served_like_vercels_bridge(handler: type[BaseHTTPRequestHandler], printed: list[str]) -> ThreadingHTTPServer:
    """vercel-runtime's vc_init.py serves `class Handler(BaseHandler, handler)`, whose log_message prints."""

    class BaseHandler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the stdlib signature
            printed.append(format % args)

    class Handler(BaseHandler, handler):
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


def test_no_access_log_line_under_vercels_bridge(capsys):
    printed: list[str] = []
    server = _served_like_vercels_bridge(load_api_module("api/jobs/run.py").handler, printed)
    try:
        assert request(server.server_address[1], "GET", "/api/jobs/run").status == 401
        with socket.create_connection(server.server_address) as conn:
            conn.sendall(b"NONSENSE\r\n\r\n")
            while conn.recv(4096):
                pass
    finally:
        server.shutdown()
        server.server_close()
    assert printed == []
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event"] for r in lines if r["event"].startswith("http.protocol")] == ["http.protocol_error"]

"""lib/http.py through a real handler: framing, limits and error shapes every endpoint shares."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.api import ApiServer, load_api_module, request
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


# -- malformed requests: always a JSON answer, never a dropped connection ------------------


def _exchange(port: int, raw: bytes, *, half_close: bool = False, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read the whole answer (the server closes after one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status_and_json(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode()
    assert b"content-type: application/json" in head.lower(), reply[:300]
    return int(status_line.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    ("content_length", "status"),
    [
        # Header bytes are read as Latin-1, where "²" is the one byte 0xB2: str.isdigit() says yes, int() no.
        pytest.param(b"\xb2", 400, id="superscript-two"),
        pytest.param(b"\xb9\xb2", 400, id="superscript-one-two"),
        pytest.param("١٠".encode(), 400, id="arabic-indic-digits-utf8"),
        pytest.param(b"+5", 400, id="plus-sign"),
        pytest.param(b"5 5", 400, id="two-numbers"),
        pytest.param(b"-1", 400, id="negative"),
        pytest.param(b"9" * 5000, 413, id="five-thousand-digits"),
        pytest.param(b"70000", 413, id="over-the-limit"),
    ],
)
def test_malformed_content_length_is_a_json_error(worker_api, capfd, content_length, status):
    raw = b"POST /api/jobs/run HTTP/1.1\r\nHost: x\r\nContent-Length: " + content_length + b"\r\n\r\n"
    got, body = _status_and_json(_exchange(worker_api.port, raw, half_close=True))
    assert got == status
    assert set(body) == {"error", "message"}
    assert "Traceback" not in capfd.readouterr().err


def test_two_different_content_lengths_are_a_400(worker_api):
    raw = b"POST /api/jobs/run HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 12\r\n\r\n{}"
    assert _status_and_json(_exchange(worker_api.port, raw, half_close=True))[0] == 400


def test_chunked_body_is_a_411(worker_api):
    raw = b"POST /api/jobs/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    status, body = _status_and_json(_exchange(worker_api.port, raw, half_close=True))
    assert (status, body["error"]) == (411, "length_required")


def test_body_shorter_than_its_content_length_is_a_400(worker_api):
    raw = b"POST /api/jobs/run HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{}"
    status, body = _status_and_json(_exchange(worker_api.port, raw, half_close=True))
    assert status == 400
    assert "ended after 2 of 50 bytes" in body["message"]


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        pytest.param(b"GARBAGE\r\n\r\n", 400, "invalid_request", id="one-word"),
        pytest.param(b"POST /api/jobs/run\r\n\r\n", 400, "invalid_request", id="http-0.9-post"),
        pytest.param(b"GET /api/jobs/run\r\n\r\n", 400, "invalid_request", id="http-0.9-get"),
        pytest.param(b"GET / HTTP/x.y\r\n\r\n", 400, "invalid_request", id="bad-version"),
        pytest.param(b"GET / HTTP/\xc2\xb2.1\r\n\r\n", 400, "invalid_request", id="unicode-digit-version"),
        pytest.param(b"GET /a b c HTTP/1.1\r\n\r\n", 400, "invalid_request", id="four-words"),
        pytest.param(
            b"GET http://[::1/api/jobs/run HTTP/1.1\r\n\r\n", 400, "invalid_request", id="bad-absolute-target"
        ),
        pytest.param(b"GET / HTTP/2.0\r\n\r\n", 400, "http_version_not_supported", id="http-2"),
        pytest.param(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long", id="long-request-line"),
        pytest.param(
            b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431, "header_fields_too_large", id="long-header"
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
            431,
            "header_fields_too_large",
            id="too-many-headers",
        ),
        pytest.param(b"FOO /api/jobs/run HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed", id="unknown-method"),
        pytest.param(b"TRACE /api/jobs/run HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed", id="trace"),
    ],
)
def test_malformed_request_line_or_headers_get_a_json_error(worker_api, capfd, raw, status, error):
    got, body = _status_and_json(_exchange(worker_api.port, raw))
    assert (got, body["error"]) == (status, error)
    assert "<html" not in json.dumps(body).lower()
    assert "Traceback" not in capfd.readouterr().err


def test_unknown_method_answer_names_the_served_ones(worker_api):
    reply = _exchange(worker_api.port, b"FOO /api/jobs/run HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"\r\nAllow: GET, POST\r\n" in reply


def test_protocol_errors_never_echo_the_request_line(worker_api):
    reply = _exchange(worker_api.port, b"GET /?token=s3cr3t-in-the-query HTTP/x\r\n\r\n")
    assert b"s3cr3t" not in reply


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"User-Agent": "curl\x00/8"}, id="nul-in-a-header-read-as-text"),
        pytest.param({"X-Anything": "a\x00"}, id="nul-in-any-header"),
    ],
)
def test_nul_in_a_header_is_a_400(worker_api, sql, headers):
    response = worker_api.request("POST", body={"limit": 1}, headers={**runner_headers(), **headers})
    assert response.status == 400
    assert response.json["details"][0]["type"] == "unstorable_text"
    assert sql.execute("select count(*) as n from job_queue_invocations").fetchone()["n"] == 0


def test_deeply_nested_body_with_valid_auth_is_a_400(worker_api, capfd):
    body = b'{"limit": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    body = body[: 64 * 1024 - 2] + b"]}"  # within the body limit, still thousands deep
    response = worker_api.request("POST", body=body, headers=runner_headers())
    assert response.status == 400
    assert response.json["error"] == "invalid_json"
    assert "nested more than 64" in response.json["message"]
    assert "RecursionError" not in capfd.readouterr().out


def test_nesting_up_to_the_limit_is_parsed(worker_api):
    """64 levels are fine; the model then refuses the value as not an integer."""
    body = b'{"limit": ' + b"[" * 63 + b"]" * 63 + b"}"
    response = worker_api.request("POST", body=body, headers=runner_headers())
    assert response.status == 400
    assert response.json["error"] == "invalid_request"


def test_half_sent_request_is_answered_408_after_the_read_timeout(app_env, capfd):
    server = ApiServer("api/jobs/run.py", read_timeout=0.5)
    try:
        reply = _exchange(server.port, b"POST /api/jobs/run HTTP/1.1\r\nHost: x\r\nContent-Le", timeout=30)
        status, body = _status_and_json(reply)
        assert (status, body["error"]) == (408, "request_timeout")
        reply = _exchange(server.port, b"POST /api/jobs/run HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", timeout=30)
        assert _status_and_json(reply)[0] == 408
    finally:
        server.close()
    assert "Traceback" not in capfd.readouterr().err


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


def test_a_caller_that_hung_up_costs_a_log_line_not_a_traceback(capsys):
    """A kick (or pg_net) leaves before the worker answers: the answer is dropped quietly, the work stands."""
    from lib.http import Routes, VercelHandler, json_response

    finished = threading.Event()
    answer_written = threading.Event()

    def slow(req):
        finished.wait(10)
        return json_response({"big": "x" * 2_000_000})  # more than socket buffers hold: the write must fail

    class handler_class(VercelHandler):  # noqa: N801 - the name the test had
        routes = Routes(POST=slow)

    original_send = handler_class._send

    def send_and_note(self, response):
        original_send(self, response)
        answer_written.set()

    handler_class._send = send_and_note
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        conn = socket.create_connection(("127.0.0.1", server.server_address[1]))
        conn.sendall(b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # reset: the caller is gone
        finished.set()
        assert answer_written.wait(10)
    finally:
        server.shutdown()
        server.server_close()
    captured = capsys.readouterr()
    assert '"event":"http.caller_gone"' in captured.out
    assert "Traceback" not in captured.err

"""lib/http.py through a real handler: framing, limits and error shapes every endpoint shares."""

from __future__ import annotations

import socket

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

"""Every api file under generated hostile input, over real HTTP, against the real database.

For each endpoint, hypothesis builds requests from pieces an attacker or a
broken client would send — NULs, lone surrogates, unicode digits, huge and
non-finite numbers, JSON nested thousands deep, wrong types, unknown fields,
bad and half-valid cookies, cross-site origins, spoofed forwarded headers,
malformed request lines and Content-Lengths — mixed with valid credentials and
valid values so the requests also get past authentication. Each answer must be:
- JSON with a status below 500 (the health endpoint's 503 report excepted);
- prompt: the client gives up after CLIENT_TIMEOUT_SECONDS, which fails the test;
- harmless when refused: a 4xx leaves the queue tables exactly as they were;
- free of secrets: no configured secret or issued token in any response, nor in
  anything the server wrote to stdout/stderr (its JSON logs).

`FUZZ_EXAMPLES` sets the examples per endpoint (default 300, CI's setting).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import request
from tests.support.jobs import JobFactory
from tests.support.secrets import CRON_SECRET, RUNNER_SECRET
from tests.support.tokens import ADMIN_ID, COACH_ID, JWT_SECRET, PROJECT_REF, STRANGER_ID, hs256, session_cookie_value

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
CLIENT_TIMEOUT_SECONDS = 30.0

ENDPOINTS = [
    "api/jobs/run.py",
    "api/admin/job-queue/actions.py",
    "api/admin/job-queue/health.py",
    "api/admin/job-queue/jobs.py",
    "api/admin/job-queue/toggle.py",
    "api/admin/jobs/trigger-sync.py",
    "api/admin/jobs/trigger-totals-sweep.py",
]

# Issued once, so the logs and answers can be searched for them.
ADMIN_TOKEN = hs256(ADMIN_ID)
COACH_TOKEN = hs256(COACH_ID)
STRANGER_TOKEN = hs256(STRANGER_ID)
EXPIRED_TOKEN = hs256(ADMIN_ID, expires_in=-60)
SECRETS = [CRON_SECRET, RUNNER_SECRET, JWT_SECRET, ADMIN_TOKEN, COACH_TOKEN, STRANGER_TOKEN, EXPIRED_TOKEN]
# A token's signature alone is as secret as the token.
NEEDLES = [*SECRETS, *(token.rsplit(".", 1)[1] for token in SECRETS[3:])]

SNAPSHOT = """
    select (select md5(coalesce(string_agg(j::text, '|' order by j.id), '')) from job_queue j) as jobs,
           (select md5(coalesce(string_agg(s::text, '|'), '')) from job_queue_settings s) as settings,
           (select md5(coalesce(string_agg(r::text, '|' order by r.id), '')) from job_queue_invocations r) as runs
"""

# -- pieces -----------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "²",
        "١٠",
        "９",
        "1e999",
        "-1e999",
        "NaN",
        "Infinity",
        "9" * 400,
        "-" + "9" * 30,
        "0x10",
        "1_000",
        " 5",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        "' or 1=1 --",
        "%00",
        "%",
        "\u202e",
        "😀" * 50,
        "x" * 600,
        "pending",
        "failed",
        "retry",
        "cancel",
        "test_noop",
        "game_platform_sync",
    ]
)
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=30), st.uuids().map(str))
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, 5, 10, 11, 100, 101, 500, 2**31, 2**63, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
FIELDS = st.sampled_from(
    [
        "limit",
        "force",
        "enabled",
        "reason",
        "action",
        "jobId",
        "id",
        "status",
        "taskType",
        "cursor",
        "dryRun",
        "coachId",
        "batchSize",
        "dry_run",
        "__proto__",
    ]
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.one_of(FIELDS, TEXT), children, max_size=4)
    ),
    max_leaves=12,
)


def _deep(depth: int, opener: str = "[") -> str:
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


RAW_JSON = st.sampled_from(
    [
        _deep(10_000),
        _deep(65),
        _deep(3000, "{"),
        '{"limit": ' + _deep(5000) + "}",
        '{"enabled": false, "reason": "\\u0000"}',
        '{"enabled": false, "reason": "\\ud800"}',
        '{"reason": "\\udfff\\ud800", "enabled": true}',
        '{"limit": NaN}',
        '{"limit": Infinity}',
        '{"limit": -Infinity}',
        '{"limit": 1e999}',
        '{"limit": ' + "9" * 5000 + "}",
        '{"batchSize": ' + "9" * 100 + "}",
        '{"action": "retry", "jobId": "\\u0000"}',
        '{"coachId": "00000000-0000-4000-8000-00000000c001\\u0000"}',
        '{"\\u0000": 1}',
        '{"limit": 1, "limit": "x"}',
        "[" * 10 + "]" * 9,
        '"just a string"',
        "null",
        "",
        " ",
        "{",
        '{"a": "unterminated',
    ]
)


def _valid_bodies(route: str, job_ids: list[str]) -> list[dict[str, Any]]:
    """Bodies each endpoint accepts, for the generator to send as they are or with one field spoiled."""
    if route.endswith("/run"):
        return [{}, {"limit": 1}, {"limit": 3, "force": True}]
    if route.endswith("/actions"):
        return [{"action": action, "jobId": job_id} for action in ("retry", "cancel") for job_id in job_ids]
    if route.endswith("/toggle"):
        return [{"enabled": False, "reason": "maintenance"}, {"enabled": True}]
    if route.endswith("/trigger-sync"):
        return [{}, {"dryRun": True}, {"coachId": str(COACH_ID)}]
    if route.endswith("/trigger-totals-sweep"):
        return [{}, {"dryRun": True, "batchSize": 10}]
    return [{}]


@st.composite
def bodies(draw: st.DrawFn, route: str, job_ids: list[str]) -> bytes | None:
    kind = draw(st.sampled_from(["none", "valid", "valid", "spoiled", "json", "object", "raw", "bytes"]))
    if kind == "none":
        return None
    if kind in ("valid", "spoiled"):
        value = dict(draw(st.sampled_from(_valid_bodies(route, job_ids))))
        if kind == "spoiled":
            value[draw(st.one_of(st.sampled_from(sorted(value) or ["limit"]), FIELDS))] = draw(JSON_VALUES)
        return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == "json":
        return json.dumps(draw(JSON_VALUES), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == "object":
        value = draw(st.dictionaries(FIELDS, LEAVES, max_size=4))
        return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == "raw":
        return draw(RAW_JSON).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=64))


@st.composite
def queries(draw: st.DrawFn, job_ids: list[str]) -> str:
    pairs = draw(st.lists(st.tuples(st.one_of(FIELDS, TEXT), st.one_of(TEXT, st.sampled_from(job_ids))), max_size=4))
    parts = []
    for name, value in pairs:
        encode = draw(st.booleans())
        name_bytes = name.encode("utf-8", "surrogatepass")
        value_bytes = value.encode("utf-8", "surrogatepass")
        parts.append(
            f"{quote(name_bytes)}={quote(value_bytes)}"
            if encode
            else f"{quote(name_bytes, safe='%=&')}={quote(value_bytes, safe='%=&')}"
        )
    return "&".join(parts)


def _cookie(session: Any, *, prefix: str = "base64-", chunked: bool = False) -> str:
    text = session if isinstance(session, str) else json.dumps(session)
    encoded = base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")
    value = prefix + encoded if prefix else quote(text.encode("utf-8", "surrogatepass"))
    name = f"sb-{PROJECT_REF}-auth-token"
    if not chunked:
        return f"{name}={value}"
    chunks = [value[i : i + 40] for i in range(0, len(value), 40)]
    return "; ".join(f"{name}.{i}={chunk}" for i, chunk in enumerate(chunks))


CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": f"Bearer {ADMIN_TOKEN}"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}"},
    {"Authorization": f"Bearer {COACH_TOKEN}"},
    {"Authorization": f"Bearer {STRANGER_TOKEN}"},
    {"Authorization": f"Bearer {EXPIRED_TOKEN}"},
    {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "vercel-cron/1.0"},
    {"x-job-runner-secret": RUNNER_SECRET},
    {"x-job-runner-secret": RUNNER_SECRET},
    {"x-job-runner-secret": RUNNER_SECRET[:-1]},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": f"Bearer {ADMIN_TOKEN}\x00"},
    {"Authorization": "Bearer " + "a" * 20_000},
    {"Authorization": "Bearer a.b.c"},
    {"Cookie": f"sb-{PROJECT_REF}-auth-token={session_cookie_value(ADMIN_TOKEN)}"},
    {"Cookie": f"sb-{PROJECT_REF}-auth-token={session_cookie_value(ADMIN_TOKEN)}", "Origin": "https://evil.example"},
    {
        "Cookie": f"sb-{PROJECT_REF}-auth-token={session_cookie_value(ADMIN_TOKEN)}",
        "Host": "admin.example",
        "X-Forwarded-Host": "evil.example",
        "Origin": "https://evil.example",
    },
    {
        "Cookie": f"sb-{PROJECT_REF}-auth-token={session_cookie_value(ADMIN_TOKEN)}",
        "Host": "admin.example",
        "Origin": "http://admin.example",
    },
    {"Cookie": f"sb-{PROJECT_REF}-auth-token={session_cookie_value(ADMIN_TOKEN)}", "Sec-Fetch-Site": "cross-site"},
    {"Cookie": _cookie(_deep(20_000))},
    {"Cookie": _cookie('{"access_token":' * 2000 + '"x"' + "}" * 2000, chunked=True)},
    {"Cookie": _cookie(_deep(5000), prefix="")},
    {"Cookie": _cookie({"access_token": ADMIN_TOKEN + "\x00"})},
    {"Cookie": _cookie({"access_token": "\ud800"})},
    {"Cookie": _cookie({"access_token": 5})},
    {"Cookie": _cookie([None, "refresh"])},
    {"Cookie": _cookie('{"access_token": NaN}')},
    {"Cookie": _cookie({"access_token": ADMIN_TOKEN}, chunked=True).replace(".1=", ".7=")},
    {"Cookie": f"sb-{PROJECT_REF}-auth-token.999999999999=x"},
    {"Cookie": f"sb-{PROJECT_REF}-auth-token=base64-!!!"},
    {"Cookie": f"sb-a-auth-token=x; sb-b-auth-token=y; sb-{PROJECT_REF}-auth-token.0=\x00"},
    {"Cookie": "=; ;;=;" + "a=" * 200},
]

EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(
        ["Content-Type", "Origin", "Sec-Fetch-Site", "X-Forwarded-Host", "X-Forwarded-Proto", "User-Agent", "X-Extra"]
    ),
    st.one_of(
        NASTY_TEXT,
        st.sampled_from(["application/json", "text/plain", "https://evil.example", "null", "cross-site", "https"]),
    ),
    max_size=3,
)


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
VALID_CREDENTIALS: list[dict[str, str]] = [
    {"Authorization": f"Bearer {ADMIN_TOKEN}"},
    {"x-job-runner-secret": RUNNER_SECRET},
    {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "vercel-cron/1.0"},
]


@st.composite
def requests(draw: st.DrawFn, route: str, job_ids: list[str]) -> dict[str, Any]:
    served = ["GET"] if route.endswith(("/health", "/jobs")) else ["POST"]
    if route.endswith("/run"):
        served = ["GET", "POST"]
    if draw(st.integers(0, 3), label="mostly valid") == 0:
        # A request the endpoint accepts, so the rest of the path (validation,
        # queue, handlers) is reached too, not only authentication.
        body = json.dumps(draw(st.sampled_from(_valid_bodies(route, job_ids)))).encode()
        return {
            "method": draw(st.sampled_from(served)),
            "query": "",
            "body": None if "GET" in served and route.endswith(("/health", "/jobs")) else body,
            "headers": draw(st.sampled_from(VALID_CREDENTIALS)),
        }
    methods = st.one_of(st.sampled_from(served), st.sampled_from(METHODS))
    credentials = st.one_of(st.sampled_from(VALID_CREDENTIALS), st.sampled_from(CREDENTIALS))
    return {
        "method": draw(methods),
        "query": draw(st.one_of(st.just(""), queries(job_ids))),
        "body": draw(bodies(route, job_ids)),
        "headers": {**draw(credentials), **draw(EXTRA_HEADERS)},
    }


RAW_REQUEST_LINES = st.sampled_from(
    [
        b"GET {path} HTTP/1.1",
        b"POST {path} HTTP/1.0",
        b"FOO {path} HTTP/1.1",
        b"GET {path} HTTP/2.0",
        b"GET {path} HTTP/\xb9.\xb9",
        b"GET {path}",
        b"POST {path}",
        b"GET",
        b"",
        b"\x00\x01\x02",
        b"GET {path}?a=\x00 HTTP/1.1",
        b"GET {path} {path} HTTP/1.1",
        b"GET http://[::1{path} HTTP/1.1",
        b"POST http://localhost:99999{path} HTTP/1.1",
        b"GET //evil.example{path} HTTP/1.1",
        b"GET {path}" + b"x" * 70_000 + b" HTTP/1.1",
    ]
)
RAW_HEADERS = st.lists(
    st.sampled_from(
        [
            b"Content-Length: \xb2",
            b"Content-Length: \xd9\xa1",
            b"Content-Length: -1",
            b"Content-Length: 99999999999999999999999999",
            b"Content-Length: 5, 5",
            b"Content-Length: 2",
            b"Content-Length: 2000",
            b"Transfer-Encoding: chunked",
            b"Host: \x00",
            b"X: " + b"y" * 70_000,
            b"no colon here",
            b" folded continuation",
            b"x-job-runner-secret: " + RUNNER_SECRET.encode(),
            b"Authorization: Bearer " + ADMIN_TOKEN.encode(),
            b"Expect: 100-continue",
        ]
    ),
    max_size=4,
)


# -- the checks ----------------------------------------------------------------------------


def _raw_exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_SECONDS) as conn:
        try:
            conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # a reset after the answer (unread request bytes) is the kernel's, not the server's
    return b"".join(chunks)


def _assert_acceptable(route: str, status: int, content_type: str, raw: bytes) -> None:
    assert "application/json" in content_type, (status, raw[:200])
    text = raw.decode("utf-8", "replace")
    body = json.loads(raw) if raw else None
    if status >= 500:
        health_report = route.endswith("/health") and isinstance(body, dict) and body.get("healthy") is False
        assert status == 503, text[:500]
        assert health_report, text[:500]
    for needle in NEEDLES:
        assert needle not in text, f"a secret or token is in the answer: {text[:300]}"


@pytest.fixture
def fuzz_target(request, admin_env, test_tasks, serve, sql):
    """The endpoint served, the queue holding a few jobs of each kind, their ids for the generator."""
    server = serve(request.param)
    job_ids = []
    for status in ("pending", "failed", "cancelled", "succeeded"):
        row = sql.execute("select job_queue_enqueue('test_noop', '{}'::jsonb, now() + interval '1 day', 3) as id")
        job_id = str(row.fetchone()["id"])
        JobFactory(sql).stage(job_id, status)
        job_ids.append(job_id)
    for _ in range(2):
        row = sql.execute("select job_id from job_queue_enqueue_unique('test_noop', '{}'::jsonb, 'twin')").fetchone()
        sql.execute("select job_queue_cancel(%s)", (row["job_id"],))
        job_ids.append(str(row["job_id"]))
    job_ids.append(str(uuid.uuid4()))
    return server, job_ids


@pytest.mark.parametrize("fuzz_target", ENDPOINTS, indirect=True, ids=[e.removeprefix("api/") for e in ENDPOINTS])
def test_hostile_requests_get_a_clean_4xx_and_change_nothing(fuzz_target, sql, capfd):
    server, job_ids = fuzz_target
    route = server.route
    seen_statuses: set[int] = set()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        before = sql.execute(SNAPSHOT).fetchone()
        if data.draw(st.integers(0, 9), label="raw") == 0:
            line = data.draw(RAW_REQUEST_LINES).replace(b"{path}", route.encode())
            head = b"\r\n".join([line, *data.draw(RAW_HEADERS)])
            reply = _raw_exchange(server.port, head + b"\r\n\r\n" + data.draw(st.binary(max_size=32)))
            if not reply:
                assert not line.strip(), f"no answer to {head[:200]!r}"
                return  # a blank request line: the stdlib closes without a word, as HTTP allows
            status_line, _, rest = reply.partition(b"\r\n")
            head_bytes, _, payload = rest.partition(b"\r\n\r\n")
            status = int(status_line.split()[1])
            header_lines = head_bytes.split(b"\r\n")
            types = [h.split(b":", 1)[1].decode() for h in header_lines if h.lower().startswith(b"content-type:")]
            content_type = types[0] if types else ""
        else:
            spec = data.draw(requests(route, job_ids))
            headers = {name: value.encode("utf-8", "surrogatepass") for name, value in spec["headers"].items()}
            response = request(
                server.port,
                spec["method"],
                route + (f"?{spec['query']}" if spec["query"] else ""),
                spec["body"],
                headers,  # type: ignore[arg-type]
                timeout=CLIENT_TIMEOUT_SECONDS,
            )
            status, content_type, payload = response.status, response.headers.get("content-type", ""), response.raw
            if spec["method"] == "HEAD":
                assert payload == b""
        seen_statuses.add(status)
        _assert_acceptable(route, status, content_type, payload)
        if status >= 400:
            assert sql.execute(SNAPSHOT).fetchone() == before, f"a refused request ({status}) changed the queue"

    one_request()
    captured = capfd.readouterr()
    for needle in NEEDLES:
        assert needle not in captured.out, "a secret or token was logged"
        assert needle not in captured.err, "a secret or token was written to stderr"
    assert "Traceback" not in captured.err
    # The generator got past authentication and validation, not only to the front door.
    assert seen_statuses & {200, 404, 409, 503}, seen_statuses

"""The kick: one request that starts the worker right after a job was enqueued.

Without it a job enqueued by an admin waits for the next cron tick (up to five
minutes with Vercel Cron every 5 minutes, a day on Hobby). With
`Settings.worker_url` known (JOB_QUEUE_WORKER_URL, or derived from Vercel's
system variables), the admin triggers, the retry action, job creation and the
CLI's `enqueue` call `kick_worker(settings)` after their enqueue has committed.

Why it waits a little, and not for the drain: the worker answers only when its
drain is over, which may take minutes; the caller must not. On Vercel a
function may be frozen as soon as it has responded, so a kick left to a
background thread might never be sent. So the request is sent in the caller's
own time — connect (TLS included) and send within
JOB_QUEUE_KICK_CONNECT_TIMEOUT_SECONDS (2 s) — and then the answer is awaited
for at most JOB_QUEUE_KICK_ANSWER_WAIT_SECONDS (0.5 s): long enough to hear a
quick refusal (401: the secrets differ), short enough for the caller. Then the
connection is closed. A Vercel function, once invoked, runs to its end when the
caller hangs up (pg_net's 2-second timeout relies on the same).

A kick is an optimisation only: a failed one (no URL answers, a refusal, a
timeout before the request was sent) is logged without the secret and changes
nothing — the job stays pending and the next cron or ping runs it.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from lib.observability import log
from lib.settings import Settings, secret_value

KICK_USER_AGENT = "job-queue-kick/1.0"


def kick_worker(
    settings: Settings, *, body: dict[str, object] | None = None, answer_wait_seconds: float | None = None
) -> bool:
    """Ask the worker to run now; return once it has the request. Never raises.

    `body`: the worker's parameters (fan-out follow-ups send their chain, lib/fanout.py).
    `answer_wait_seconds`: overrides JOB_QUEUE_KICK_ANSWER_WAIT_SECONDS (0: hang up once sent).
    Returns whether the request was sent (and not refused).
    """
    url = settings.worker_url
    if url is None:
        return False
    wait = settings.kick_answer_wait_seconds if answer_wait_seconds is None else answer_wait_seconds
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"
    headers = {"Content-Type": "application/json", "User-Agent": KICK_USER_AGENT}
    runner_secret = secret_value(settings.job_queue_runner_secret)
    cron_secret = secret_value(settings.cron_secret)
    if runner_secret:
        headers["x-job-runner-secret"] = runner_secret
    elif cron_secret:
        headers["Authorization"] = f"Bearer {cron_secret}"
    else:
        log("kick.skipped", "warning", url=where, reason="neither JOB_QUEUE_RUNNER_SECRET nor CRON_SECRET is set")
        return False
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=settings.kick_connect_timeout_seconds)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        payload = json.dumps(body if body is not None else {}, separators=(",", ":")).encode()
        connection.request("POST", path, body=payload, headers=headers)
        if wait <= 0 or connection.sock is None:
            log("kick.sent", url=where, answered=False)
            return True
        connection.sock.settimeout(wait)
        try:
            response = connection.getresponse()
        except TimeoutError:
            log("kick.sent", url=where, answered=False)  # the worker is running: leave it to it
            return True
        answer = response.read(2048)
        if response.status == 200:
            log("kick.sent", url=where, answered=True, status=response.status)
            return True
        log("kick.refused", "warning", url=where, status=response.status, answer=_error_code(answer))
        return False
    except Exception as exc:  # noqa: BLE001 - a kick never fails its caller
        log("kick.failed", "warning", url=where, error=f"{type(exc).__name__}: {exc}")
        return False
    finally:
        connection.close()


def _error_code(raw: bytes) -> str | None:
    """The `error` code of a JSON error answer (never the whole body: keep logs small)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) else None

"""The requests each function must answer through Vercel's bridge, and what each answer must be."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

CRON_SECRET = "vercel-check-cron-secret-5d1e"
RUNNER_SECRET = "vercel-check-runner-secret-8a2f"
JWT_SECRET = "vercel-check-supabase-jwt-secret-at-least-32-bytes"
VENDOR_TOKEN = "vercel-check-vendor-token"


class Case(NamedTuple):
    name: str
    method: str
    query: str
    headers: Mapping[str, str]
    body: bytes | None
    status: int
    compare: bool = False  # also sent through scripts/dev.py's server: same status and body


def cron() -> dict[str, str]:
    return {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "vercel-cron/1.0"}


def runner() -> dict[str, str]:
    return {"x-job-runner-secret": RUNNER_SECRET}


def as_json(body: Any) -> bytes:
    return json.dumps(body).encode()


def cases(entrypoint: str, admin: Callable[[], dict[str, str]]) -> list[Case]:
    """The matrix for one api file; `admin()` gives an admin's Authorization header."""
    json_type = {"Content-Type": "application/json"}
    unknown_job = "00000000-0000-4000-8000-0000000000f0"
    table: dict[str, list[Case]] = {
        "api/admin/job-queue/health.py": [
            Case("no credentials", "GET", "", {}, None, 401, compare=True),
            Case("admin", "GET", "", admin(), None, 200),
            Case("runner secret (monitors)", "GET", "", runner(), None, 200),
            Case("wrong method", "POST", "", admin(), None, 405, compare=True),
        ],
        "api/admin/job-queue/jobs.py": [
            Case("no credentials", "GET", "", {}, None, 401, compare=True),
            Case("admin lists jobs", "GET", "limit=5", admin(), None, 200, compare=True),
            Case("bad query", "GET", "limit=abc", admin(), None, 400, compare=True),
            Case("wrong method", "POST", "", admin(), as_json({}), 405, compare=True),
        ],
        "api/admin/job-queue/toggle.py": [
            Case("no credentials", "POST", "", json_type, as_json({"enabled": True}), 401, compare=True),
            Case("admin", "POST", "", {**admin(), **json_type}, as_json({"enabled": True, "reason": "check"}), 200),
            Case("bad body", "POST", "", {**admin(), **json_type}, b"{bad", 400, compare=True),
            Case("wrong method", "GET", "", admin(), None, 405, compare=True),
        ],
        "api/admin/job-queue/actions.py": [
            Case("no credentials", "POST", "", json_type, as_json({"action": "retry", "jobId": unknown_job}), 401),
            Case(
                "admin, unknown job",
                "POST",
                "",
                {**admin(), **json_type},
                as_json({"action": "retry", "jobId": unknown_job}),
                404,
                compare=True,
            ),
            Case("bad body", "POST", "", {**admin(), **json_type}, as_json({"action": "retry", "jobId": "42"}), 400),
            Case("wrong method", "GET", "", admin(), None, 405, compare=True),
        ],
        "api/admin/jobs/trigger-sync.py": [
            Case("no credentials", "POST", "", {}, None, 401, compare=True),
            Case("admin", "POST", "", admin(), None, 200),
            Case("bad body", "POST", "", {**admin(), **json_type}, as_json({"dryRun": "yes"}), 400, compare=True),
            Case("wrong method", "GET", "", admin(), None, 405, compare=True),
        ],
        "api/admin/jobs/trigger-totals-sweep.py": [
            Case("no credentials", "POST", "", {}, None, 401, compare=True),
            Case("admin", "POST", "", admin(), None, 200),
            Case("bad body", "POST", "", {**admin(), **json_type}, as_json({"nope": 1}), 400, compare=True),
            Case("wrong method", "GET", "", admin(), None, 405, compare=True),
        ],
        "api/jobs/run.py": [
            Case("no credentials", "GET", "", {}, None, 401, compare=True),
            Case("wrong cron secret", "GET", "", {**cron(), "Authorization": "Bearer nope"}, None, 401),
            Case("bad query", "GET", "limit=abc", cron(), None, 400, compare=True),
            Case("wrong method", "PUT", "", runner(), None, 405, compare=True),
            Case("Vercel Cron (drains the triggered jobs)", "GET", "", cron(), None, 200),
            Case("runner secret", "POST", "", {**runner(), **json_type}, as_json({"limit": 5}), 200),
        ],
    }
    return table.get(entrypoint, [])


VOLATILE = re.compile(r"(^id$|Id$|_id$|At$|_at$|^ts$|Seconds$|Ms$|^durationMs$|^now$)")


def comparable(body: Any) -> Any:
    """A JSON body with ids, timestamps and durations blanked, so two runs compare equal."""
    if isinstance(body, dict):
        return {k: "<volatile>" if VOLATILE.search(k) else comparable(v) for k, v in body.items()}
    if isinstance(body, list):
        return [comparable(v) for v in body]
    return body

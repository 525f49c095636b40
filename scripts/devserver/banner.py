"""What the dev server prints on start: URLs, secrets, an admin token and a curl command per endpoint."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from scripts.devserver.cron import CronEntry, ScheduleDefinition
from scripts.devserver.routes import Route
from scripts.devserver.secrets import LocalSecret

# Example bodies for the endpoints this project has; any other route gets `{}`.
EXAMPLE_BODIES: dict[str, dict[str, object]] = {
    "/api/jobs/run": {"limit": 5},
    "/api/admin/jobs/trigger-sync": {"dryRun": False},
    "/api/admin/jobs/trigger-totals-sweep": {"dryRun": False, "batchSize": 100},
    "/api/admin/job-queue/toggle": {"enabled": False, "reason": "maintenance"},
    "/api/admin/job-queue/actions": {"action": "retry", "jobId": "<job id>"},
    "/api/admin/jobs/run-worker": {"limit": 5},
    "/api/admin/jobs/create": {"taskType": "game_platform_sync", "payload": {"dryRun": True}},
}
# Requests that change a state the other examples depend on, and the request that undoes each:
# pasting every example in order must not leave the queue paused.
UNDO_BODIES: dict[str, dict[str, object]] = {
    "/api/admin/job-queue/toggle": {"enabled": True},
}
EXAMPLE_QUERIES: dict[str, str] = {
    "/api/admin/job-queue/jobs": "?status=failed",
}


DASHBOARD_PATH = "/dashboard/admin-tools/jobs"


def dashboard_url(base_url: str, token: str) -> str:
    """The admin page's URL, signed in: the page keeps the token of `#token=` in sessionStorage.

    After `#`, so the token never reaches a server log or a Referer header.
    """
    return f"{base_url}{DASHBOARD_PATH}#token={token}"


@dataclass(frozen=True)
class AdminToken:
    token: str
    user_id: str
    email: str | None
    ttl_hours: int


def curl_for(base: str, route: Route, admin_available: bool) -> list[str]:
    """Ready curl commands for one route, authenticated the way that route expects."""
    methods = route.methods
    url = f"$DEV{route.path}"
    if route.path.startswith("/api/jobs/"):
        commands = []
        if "POST" in methods:
            body = json.dumps(EXAMPLE_BODIES.get(route.path, {}))
            commands.append(
                f'curl -sS -X POST "{url}" -H "x-job-runner-secret: $JOB_QUEUE_RUNNER_SECRET" -d {shlex.quote(body)}'
            )
        if "GET" in methods:
            commands.append(f'curl -sS "{url}" -H "Authorization: Bearer $CRON_SECRET" -A vercel-cron/1.0')
        return commands
    auth = '-H "Authorization: Bearer $ADMIN_TOKEN"' if admin_available else "-H 'Authorization: Bearer <token>'"
    if "POST" in methods and "GET" not in methods:
        bodies = [EXAMPLE_BODIES.get(route.path, {})]
        if route.path in UNDO_BODIES:
            bodies.append(UNDO_BODIES[route.path])
        return [
            f'curl -sS -X POST "{url}" {auth} -H "Content-Type: application/json" -d {shlex.quote(json.dumps(body))}'
            for body in bodies
        ]
    query = EXAMPLE_QUERIES.get(route.path, "")
    commands = [f'curl -sS "{url}{query}" {auth}']
    if route.path.endswith("/health"):
        commands.append(f'curl -sS "{url}" -H "x-job-runner-secret: $JOB_QUEUE_RUNNER_SECRET"')
    return commands


def render_banner(
    *,
    base_url: str,
    database: str,
    cli_line: str,
    migrations_applied: Sequence[str],
    game_platform: str,
    seed_note: str,
    routes: Sequence[Route],
    route_errors: dict[str, str],
    secrets: dict[str, LocalSecret],
    admin: AdminToken | None,
    admin_note: str,
    crons: Sequence[CronEntry],
    skipped_schedules: Sequence[ScheduleDefinition],
    queue_schedules: Sequence[tuple[str, str, bool]] = (),
    worker_url: str | None = None,
) -> str:
    out: list[str] = []
    add = out.append
    add("")
    add(f"Job queue dev server: {base_url}")
    add(f"  database      {database}")
    if migrations_applied:
        add(f"  migrations    applied now: {', '.join(migrations_applied)}")
    else:
        add("  migrations    up to date")
    add(f"  game platform {game_platform}")
    add(f"  demo data     {seed_note}")
    if admin is not None:
        add(f"  dashboard     {dashboard_url(base_url, admin.token)}")
        add("                (signed in as the admin by the token after #; it stays in this browser tab only)")
    else:
        add(f"  dashboard     {base_url}{DASHBOARD_PATH} (no admin token: {admin_note})")
    add("")
    add("Routes (discovered from api/, served by each file's own handler class):")
    for route in routes:
        add(f"  {'/'.join(route.methods):<30} {base_url}{route.path}")
    for path, error in route_errors.items():
        add(f"  NOT SERVED {path}: {error}")
    add("")
    add("Schedules (UTC), from vercel.json, the pg_cron migration and the queue's own table:")
    for entry in crons:
        add(f"  [{entry.source:<8}] {entry.expression.text:<14} {entry.name}: {entry.summary}")
    for definition in skipped_schedules:
        add(f"  [supabase] {definition.schedule:<14} {definition.job_name}: not run locally (needs pg_net and Vault)")
    for name, cron, enabled in queue_schedules:
        state = "enqueued by each worker call when due" if enabled else "disabled"
        add(f"  [queue   ] {cron:<14} {name}: {state} (python scripts/jobs.py schedules list)")
    if worker_url:
        add(f"  kicks: triggers, retries and `jobs.py enqueue` POST {worker_url} at once (JOB_QUEUE_WORKER_URL)")
    add("")
    add("Paste into a shell, then use the curl commands below:")
    add(f"  export DEV={base_url}")
    for name in ("CRON_SECRET", "JOB_QUEUE_RUNNER_SECRET", "SUPABASE_JWT_SECRET"):
        secret = secrets[name]
        if secret.from_environment:
            add(f"  # {name} is taken from your environment")
        else:
            add(f"  export {name}={shlex.quote(secret.value)}   # generated, kept in .dev/secrets.json")
    if admin is not None:
        add(f"  export ADMIN_TOKEN={admin.token}")
        add(
            f"  # ADMIN_TOKEN: HS256 access token for admin profile {admin.user_id}"
            f"{f' ({admin.email})' if admin.email else ''}, aud=authenticated, valid {admin.ttl_hours} h"
        )
    else:
        add(f"  # no admin access token: {admin_note}")
    add("")
    add("Try it:")
    for route in routes:
        for command in curl_for(base_url, route, admin is not None):
            add(f"  {command}")
    add("")
    add(cli_line)
    add("Ctrl-C stops everything (server, schedules, sandbox, embedded PostgreSQL).")
    return "\n".join(out)

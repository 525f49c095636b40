"""Operator CLI for the job queue: the same functions the endpoints use, from a terminal.

    python scripts/jobs.py status         # no DATABASE_URL, ./.dev present: the dev database and sandbox
    DATABASE_URL=postgresql://... python scripts/jobs.py status
    python scripts/jobs.py enqueue game_platform_sync --payload '{"dryRun": true}'
    python scripts/jobs.py run --limit 10 --force
    python scripts/jobs.py list --status failed
    python scripts/jobs.py show <job id>
    python scripts/jobs.py pause --reason "vendor maintenance"   |   resume
    python scripts/jobs.py retry <job id>   |   cancel <job id>
    python scripts/jobs.py cleanup --older-than 30d
    python scripts/jobs.py schedules list   |   enable NAME   |   disable NAME
    python scripts/jobs.py schedules set-cron NAME "*/30 * * * *"   |   run-now NAME

Every command reads `DATABASE_URL` (and the bundle's other variables) from the
environment — or, with none set and the dev server's `.dev/` folder present,
uses the dev database and sandbox vendor, saying so on stderr — and goes
through lib/queue.py, lib/worker.py and lib/health.py, exactly like the
endpoints. `--json` prints one JSON document for scripts; the worker's JSON log
lines go to stderr so stdout stays parseable.

Exit codes: 0 done; 1 done, but it reports trouble (a job failed in `run`, the
queue is unhealthy in `status`); 2 bad usage or input; 3 no such job or schedule; 4 the
transition is impossible (the job's status does not allow it); 5 configuration
or database unavailable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from uuid import UUID

if __package__ in (None, ""):  # run as `python scripts/jobs.py`: make `lib` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scripts.requirements_check import require_dev_environment

    require_dev_environment("scripts/jobs.py")  # a clear message, not a ModuleNotFoundError, outside .venv


from lib.db import Database, connect
from lib.endpoints.worker import RunParams
from lib.errors import ConfigurationError, DatabaseError
from lib.job_status import JobStatus
from lib.jobs.registry import PayloadRejected, TaskRegistry, default_registry, stored_payload
from lib.queue import Queue, Schedule
from lib.settings import RETENTION_DAYS, Settings, get_settings, reload_settings
from lib.worker import MAX_LIMIT, Worker
from scripts.devserver.cli_env import dev_environment

EXIT_OK = 0
EXIT_TROUBLE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class CliError(Exception):
    """A failure explained to the operator, with the exit code it maps to."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- parsing helpers -------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `30d`, `2w`."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 12h, 30d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_when(text: str) -> datetime:
    """An ISO 8601 time (UTC when no offset is given), or `+15m` for "in 15 minutes"."""
    if text.startswith("+"):
        return datetime.now(UTC) + parse_duration(text[1:])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO 8601 time (2026-11-28T12:00:00Z) nor a delay like +15m"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_job_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (a UUID)") from None


def parse_payload(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--payload must be a JSON object")
    return value


# -- output --------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """Records (dataclasses, named tuples), UUIDs and times as JSON-able values."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_plain(asdict(value))
    if callable(getattr(value, "model_dump", None)):  # a pydantic model, by field name: the CLI speaks Python's
        return to_plain(value.model_dump(by_alias=False))
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return to_plain(value._asdict())
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def ago(moment: datetime | str | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    return f"{age(abs(seconds))} {'ago' if seconds >= 0 else 'from now'}"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def one_line(text: str | None, width: int = 70) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- commands ------------------------------------------------------------------


def _kick(settings: Settings, args: argparse.Namespace) -> bool:
    """Start the worker now (lib/kick.py) unless --no-kick or its URL is unknown; whether a kick was sent."""
    if args.no_kick or settings.worker_url is None:
        return False
    from lib.kick import kick_worker

    with contextlib.redirect_stdout(sys.stderr):  # its log line, like the worker's, keeps off stdout
        kick_worker(settings)
    return True


# Each returns (exit code, JSON-able result, text for the terminal).

Outcome = tuple[int, Any, str]


def cmd_enqueue(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    known = args.registry.task_types()
    if args.task_type not in known:
        raise CliError(f"unknown task type {args.task_type!r}; the worker runs: {', '.join(known)}", EXIT_USAGE)
    spec = args.registry.get(args.task_type)
    assert spec is not None
    try:
        # Defaults filled in, as the admin triggers and the schedules store it: equal jobs share one dedupe key.
        payload = stored_payload(spec, args.payload or {})
    except PayloadRejected as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    queue = Queue(db)
    if args.no_dedupe:
        job_id, deduplicated = queue.enqueue(args.task_type, payload, run_at=args.run_at), False
    else:
        enqueued = queue.enqueue_unique(args.task_type, payload, run_at=args.run_at)
        job_id, deduplicated = enqueued.job_id, enqueued.deduplicated
    kicked = _kick(settings, args) if args.run_at is None or args.run_at <= datetime.now(UTC) else False
    result = {
        "jobId": str(job_id),
        "taskType": args.task_type,
        "payload": payload,
        "deduplicated": deduplicated,
        "kicked": kicked,
    }
    if deduplicated:
        text = f"An equal {args.task_type} job is already pending or processing: {job_id} (nothing added)."
    else:
        when = f" due {args.run_at.isoformat()}" if args.run_at else " due now"
        text = f"Enqueued {args.task_type} {job_id}{when} with payload {json.dumps(payload)}."
    if kicked:
        text += f" Worker kicked ({settings.worker_url})."
    return EXIT_OK, result, text


def cmd_run(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    # The worker's JSON log lines go to stderr, keeping stdout for the result.
    with contextlib.redirect_stdout(sys.stderr):
        params = RunParams.model_validate({"limit": args.limit, "force": args.force})  # the endpoint's limits
        report = Worker(db, settings, registry=args.registry).drain(
            limit=params.limit, force=params.force, trigger_source="cli"
        )
    body = report.to_json()
    if report.status == "paused":
        reason = report.paused_reason or "no reason given"
        text = f"Processing is paused ({reason}): nothing ran. Use --force to run anyway."
        return EXIT_OK, body, text
    rows = [
        [r.id, r.task_type, r.status, str(r.attempts), age(r.duration_ms / 1000), one_line(r.last_error, 60)]
        for r in report.results
    ]
    lines = [
        f"Processed {len(report.results)}: {report.succeeded} succeeded, {report.failed} failed"
        + (f", {report.released} released (time budget)" if report.released else "")
        + "."
    ]
    if rows:
        lines.append(table(rows, ["id", "task type", "status", "attempts", "took", "last error"]))
    return (EXIT_TROUBLE if report.failed else EXIT_OK), body, "\n".join(lines)


def cmd_status(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    from lib.health import health_report  # admin-side module: loaded only for this command

    report = health_report(db, settings)
    body = report.to_json()
    counts = body["queueCounts"]
    lines = [
        f"Queue: {'HEALTHY' if report.healthy else 'UNHEALTHY'}",
        "Processing: "
        + ("enabled" if body["processingEnabled"] else f"PAUSED ({body['pausedReason'] or 'no reason given'})"),
        "Jobs: " + ", ".join(f"{counts[s]} {s}" for s in JobStatus),
        f"Due now: {body['duePending']} (oldest waiting {age(body['oldestPendingAgeSeconds'])}); "
        f"stuck past lease: {body['stuckJobs']}; failed in 24 h: {body['failedLast24h']}",
        f"Worker last ran: {ago(body['lastRunAt'])}",
    ]
    for problem in report.problems:
        lines.append(f"  ! {problem}")
    if body["recentRuns"]:
        lines.append("\nRecent worker runs:")
        rows = [
            [
                ago(r.get("startedAt")),
                str(r.get("triggerSource")),
                str(r.get("status")),
                f"{r.get('succeeded', 0)}/{r.get('processed', 0)}",
                one_line(r.get("error"), 50),
            ]
            for r in body["recentRuns"]
        ]
        lines.append(table(rows, ["started", "trigger", "status", "ok/processed", "error"]))
    if body["recentJobs"]:
        lines.append("\nRecent jobs:")
        rows = [
            [str(j.get("id")), str(j.get("taskType")), str(j.get("status")), ago(j.get("createdAt"))]
            for j in body["recentJobs"]
        ]
        lines.append(table(rows, ["id", "task type", "status", "created"]))
    return (EXIT_OK if report.healthy else EXIT_TROUBLE), body, "\n".join(lines)


def cmd_list(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    page = Queue(db).list_jobs(status=args.status, task_type=args.task_type, limit=args.limit)
    body = {"jobs": to_plain(page.jobs), "more": page.next_cursor is not None}
    if not page.jobs:
        return EXIT_OK, body, "No jobs match."
    rows = [
        [
            str(j.id),
            j.task_type,
            j.status,
            f"{j.attempts}/{j.max_attempts}",
            ago(j.created_at),
            one_line(j.last_error, 50),
        ]
        for j in page.jobs
    ]
    text = table(rows, ["id", "task type", "status", "attempts", "created", "last error"])
    if page.next_cursor is not None:
        text += f"\n… more jobs: raise --limit (now {args.limit}) or filter with --status / --type."
    return EXIT_OK, body, text


def _require_job(db: Database, job_id: UUID) -> Any:
    job = Queue(db).get_job(job_id)
    if job is None:
        raise CliError(f"no job has id {job_id}", EXIT_NOT_FOUND)
    return job


def cmd_show(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    job = _require_job(db, args.job_id)
    body = to_plain(job)
    lines = [f"{key:18} {json.dumps(v) if isinstance(v, dict | list) else v}" for key, v in body.items()]
    return EXIT_OK, body, "\n".join(lines)


def cmd_pause(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    state = Queue(db).set_processing(False, args.reason.strip() or None)
    reason = state.paused_reason or "no reason given"
    return EXIT_OK, to_plain(state), f"Processing paused ({reason}). Workers now claim nothing."


def cmd_resume(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    state = Queue(db).set_processing(True)
    return EXIT_OK, to_plain(state), "Processing resumed: the next worker run claims due jobs."


def cmd_retry(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    transition = Queue(db).retry(args.job_id)
    if transition is None:
        raise CliError(f"no job has id {args.job_id}", EXIT_NOT_FOUND)
    body = to_plain(transition)
    if transition.duplicate_of is not None:
        raise CliError(
            f"job {args.job_id} stays {transition.status}: an equal job is already live ({transition.duplicate_of})",
            EXIT_CONFLICT,
        )
    if not transition.changed:
        raise CliError(
            f"job {args.job_id} is {transition.status}: only failed, cancelled or pending jobs can be retried",
            EXIT_CONFLICT,
        )
    return EXIT_OK, body, f"Job {args.job_id} is pending again (was {transition.previous_status}), due now."


def cmd_cancel(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    transition = Queue(db).cancel(args.job_id, args.reason)
    if transition is None:
        raise CliError(f"no job has id {args.job_id}", EXIT_NOT_FOUND)
    if not transition.changed:
        raise CliError(
            f"job {args.job_id} is already {transition.status}: only pending or processing jobs can be cancelled",
            EXIT_CONFLICT,
        )
    note = " Its worker's late result will be ignored." if transition.previous_status == "processing" else ""
    return EXIT_OK, to_plain(transition), f"Job {args.job_id} cancelled (was {transition.previous_status}).{note}"


DEFAULT_RETENTION = timedelta(days=RETENTION_DAYS)


def confirm_cleanup(older_than: timedelta, assume_yes: bool) -> None:
    """Deleting jobs younger than the default window loses history on purpose: ask first, or refuse."""
    if older_than >= DEFAULT_RETENTION or assume_yes:
        return
    window = age(older_than.total_seconds())
    question = (
        f"Delete every finished job and worker run older than {window}, "
        f"more than the default {age(DEFAULT_RETENTION.total_seconds())} window? [y/N] "
    )
    if not sys.stdin.isatty():
        raise CliError(
            f"refusing to delete finished jobs and runs older than only {window} without asking: "
            "no terminal to ask; add --yes to confirm",
            EXIT_USAGE,
        )
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("nothing deleted", EXIT_USAGE)


def cmd_cleanup(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    confirm_cleanup(args.older_than, args.yes)
    removed = Queue(db).cleanup(args.older_than, batch_size=args.batch_size)
    body = {"removed": removed, "olderThanSeconds": args.older_than.total_seconds()}
    text = f"Removed {removed} finished jobs and worker runs older than {age(args.older_than.total_seconds())}."
    return EXIT_OK, body, text


def cmd_schedules_list(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    schedules = Queue(db).list_schedules()
    body = {"schedules": [s.to_json() for s in schedules]}
    if not schedules:
        return EXIT_OK, body, "No schedules."
    now = datetime.now(UTC)
    rows = [
        [
            s.name,
            s.task_type,
            s.cron,
            "on" if s.enabled else "OFF",
            ago(s.next_run_at, now) if s.enabled else "-",
            ago(s.last_enqueued_at, now),
            str(s.last_job_id or ""),
        ]
        for s in schedules
    ]
    text = table(rows, ["name", "task type", "cron (UTC)", "enabled", "next run", "last enqueued", "last job"])
    return EXIT_OK, body, text


def _save_schedule(db: Database, name: str, **changes: Any) -> Schedule:
    schedule = Queue(db).save_schedule(name, **changes)
    if schedule is None:
        raise CliError(f"no schedule is named {name!r} (see `schedules list`)", EXIT_NOT_FOUND)
    return schedule


def cmd_schedules_enable(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    schedule = _save_schedule(db, args.name, enabled=True)
    return (
        EXIT_OK,
        schedule.to_json(),
        f"Schedule {schedule.name} enabled; next run {schedule.next_run_at.isoformat()}.",
    )


def cmd_schedules_disable(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    schedule = _save_schedule(db, args.name, enabled=False)
    return EXIT_OK, schedule.to_json(), f"Schedule {schedule.name} disabled: the worker enqueues nothing for it."


def cmd_schedules_set_cron(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    problem = Queue(db).cron_problem(args.cron)
    if problem is not None:
        raise CliError(problem, EXIT_USAGE)
    schedule = _save_schedule(db, args.name, cron=args.cron)
    text = f"Schedule {schedule.name} runs at {schedule.cron} (UTC); next run {schedule.next_run_at.isoformat()}."
    return EXIT_OK, schedule.to_json(), text


def cmd_schedules_run_now(db: Database, settings: Settings, args: argparse.Namespace) -> Outcome:
    enqueued = Queue(db).run_schedule_now(args.name)
    if enqueued is None:
        raise CliError(f"no schedule is named {args.name!r} (see `schedules list`)", EXIT_NOT_FOUND)
    kicked = _kick(settings, args)
    body = {"name": args.name, "jobId": str(enqueued.job_id), "deduplicated": enqueued.deduplicated, "kicked": kicked}
    if enqueued.deduplicated:
        text = f"An equal job of {args.name} is already pending or processing: {enqueued.job_id} (nothing added)."
    else:
        text = f"Enqueued {args.name}'s job {enqueued.job_id}, due now; the schedule's next run is unchanged."
    if kicked:
        text += f" Worker kicked ({settings.worker_url})."
    return EXIT_OK, body, text


# -- the parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/jobs.py",
        description="Operate the job queue at DATABASE_URL (unset: the dev server's database in .dev/).",
        epilog="Exit codes: 0 ok, 1 trouble reported, 2 usage, 3 no such job, 4 impossible transition, 5 unavailable.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[..., Outcome], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document")
        p.set_defaults(handler=handler)
        return p

    p = command("enqueue", cmd_enqueue, "Enqueue a job (deduplicated against equal live jobs unless --no-dedupe).")
    p.add_argument("task_type", metavar="TYPE", help="e.g. game_platform_sync, game_platform_totals_sweep")
    p.add_argument("--payload", type=parse_payload, help="JSON object; missing keys get their defaults")
    p.add_argument("--run-at", type=parse_when, help="ISO 8601 time or +15m (default: now)")
    p.add_argument("--no-dedupe", action="store_true", help="always add a new job")
    p.add_argument("--no-kick", action="store_true", help="do not start the worker now (JOB_QUEUE_WORKER_URL)")

    p = command("run", cmd_run, "Drain due jobs once, as the worker endpoint does.")
    p.add_argument("--limit", type=int, default=5, help=f"jobs to claim (1..{MAX_LIMIT}, default 5)")
    p.add_argument("--force", action="store_true", help="run even while processing is paused")

    command("status", cmd_status, "The health report: counts, ages, problems, recent runs and jobs.")

    p = command("list", cmd_list, "Jobs, newest first.")
    p.add_argument("--status", choices=[s.value for s in JobStatus])
    p.add_argument("--type", dest="task_type", help="only this task type")
    p.add_argument("--limit", type=int, default=20, help="how many (default 20)")

    p = command("show", cmd_show, "One job in full.")
    p.add_argument("job_id", metavar="ID", type=parse_job_id)

    p = command("pause", cmd_pause, "Pause processing: workers claim nothing until resumed (--force overrides).")
    p.add_argument("--reason", required=True, help='shown by the worker and the health report ("" for none)')

    command("resume", cmd_resume, "Resume processing.")

    p = command("retry", cmd_retry, "Put a failed, cancelled or pending job back to pending, due now.")
    p.add_argument("job_id", metavar="ID", type=parse_job_id)

    p = command("cancel", cmd_cancel, "Cancel a pending or processing job.")
    p.add_argument("job_id", metavar="ID", type=parse_job_id)
    p.add_argument("--reason", help="stored as the job's last error")

    p = command("cleanup", cmd_cleanup, "Delete finished jobs and worker runs past an age.")
    p.add_argument(
        "--older-than",
        type=parse_duration,
        default=DEFAULT_RETENTION,
        help=f"e.g. {RETENTION_DAYS}d (default), 12h",
    )
    p.add_argument("--yes", action="store_true", help=f"do not ask before deleting jobs younger than {RETENTION_DAYS}d")
    p.add_argument("--batch-size", type=int, default=1000, help="rows per delete statement (default 1000)")

    p = sub.add_parser(
        "schedules",
        help="The recurring jobs every worker invocation enqueues when due.",
        description="The recurring jobs (job_queue_schedules): cron expressions are five fields, in UTC.",
    )
    schedules = p.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")

    def schedule_action(name: str, handler: Callable[..., Outcome], help_text: str) -> argparse.ArgumentParser:
        a = schedules.add_parser(name, help=help_text, description=help_text)
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document")
        a.set_defaults(handler=handler)
        if name != "list":
            a.add_argument("name", metavar="NAME", help="the schedule, e.g. game_platform_sync")
        return a

    schedule_action("list", cmd_schedules_list, "Every schedule with its next and last run.")
    schedule_action("enable", cmd_schedules_enable, "Enable a schedule; its next run is the next slot from now.")
    schedule_action("disable", cmd_schedules_disable, "Disable a schedule: nothing is enqueued for it.")
    a = schedule_action("set-cron", cmd_schedules_set_cron, "Change a schedule's cron expression (UTC).")
    a.add_argument("cron", metavar="CRON", help='five fields, e.g. "*/30 * * * *"')
    a = schedule_action("run-now", cmd_schedules_run_now, "Enqueue a schedule's job now (deduplicated).")
    a.add_argument("--no-kick", action="store_true", help="do not start the worker now (JOB_QUEUE_WORKER_URL)")
    return parser


def _fail(message: str, code: int, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message, "exitCode": code}))
    else:
        print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None, registry: TaskRegistry = default_registry) -> int:
    """Run one command; `registry`: the task types `enqueue` accepts and `run` runs (tests pass their own)."""
    args = build_parser().parse_args(argv)
    args.registry = registry
    if getattr(args, "limit", None) is not None and args.limit < 1:
        _fail("--limit must be at least 1", EXIT_USAGE, args.json)
    try:
        with dev_environment() as on_dev:
            settings = reload_settings() if on_dev else get_settings()
            try:
                with connect(settings) as db:
                    code, result, text = args.handler(db, settings, args)
            finally:
                if on_dev:
                    reload_settings()
    except CliError as exc:
        _fail(str(exc), exc.code, args.json)
    except (ConfigurationError, DatabaseError) as exc:  # a setting missing; the database unreachable, timing out
        _fail(str(exc), EXIT_UNAVAILABLE, args.json)
    try:
        print(json.dumps(to_plain(result), indent=2) if args.json else text, flush=True)
    except BrokenPipeError:  # `jobs.py status | head`: the reader left; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


if __name__ == "__main__":
    raise SystemExit(main())

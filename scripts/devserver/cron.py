"""Cron schedules for the dev server: Vercel's crons and the Supabase (pg_cron) schedules.

Recurring jobs are not here: they are the queue's own (`job_queue_schedules`),
enqueued by each worker call, which the Vercel cron makes every 5 minutes.

Both lists are read from their sources — `vercel.json` and the database's
`job_queue_schedule_definitions()` (the pg_cron migration) — never kept here.
Expressions are five-field cron in UTC, evaluated by the database's
`job_queue_cron_next` (the function the queue's own schedules use: one cron
definition, in SQL). A scheduler thread wakes at each minute boundary and fires what is due,
each firing in its own thread: Vercel may overlap a still-running invocation,
and so does this.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from lib.sql import load_queries

VERCEL_CRON_USER_AGENT = "vercel-cron/1.0"

QUERIES = load_queries(__file__, "cron.sql")


class CronEvaluator:
    """Cron arithmetic done by the database: `job_queue_cron_next`, the one definition the queue's schedules use.

    The dev server always has a database (embedded or DATABASE_URL's), so its
    crons are read exactly as the queue reads a schedule: five fields, UTC,
    Vixie cron's rules. Each question is one statement on a connection of its own.
    """

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def _value(self, name: str, params: dict[str, Any]) -> Any:
        with psycopg.connect(self.conninfo, autocommit=True, prepare_threshold=None) as conn:
            row = conn.execute(QUERIES[name], params).fetchone()
        assert row is not None
        return row[0]

    def parse(self, text: str) -> CronExpression:
        """The expression, or ValueError saying what is wrong with it (the database's sentence)."""
        problem = self._value("cron_problem", {"cron": text})
        if problem is not None:
            raise ValueError(f"cron expression {text!r}: {problem}")
        return CronExpression(text, self)

    def next_after(self, text: str, moment: datetime) -> datetime:
        """The first matching minute strictly after `moment` (a naive `moment` is UTC, and so is the answer)."""
        naive = moment.tzinfo is None
        slot: datetime = self._value(
            "cron_next", {"cron": text, "after": moment.replace(tzinfo=UTC) if naive else moment}
        )
        slot = slot.astimezone(UTC)
        return slot.replace(tzinfo=None) if naive else slot


@dataclass(frozen=True)
class CronExpression:
    """A five-field cron expression (minute hour day-of-month month day-of-week), valid: see `CronEvaluator.parse`."""

    text: str
    evaluator: CronEvaluator

    def matches(self, moment: datetime) -> bool:
        """Whether the minute of `moment` is one of the expression's."""
        minute = moment.replace(second=0, microsecond=0)
        return self.next_after(minute - timedelta(minutes=1)) == minute

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after `moment`."""
        return self.evaluator.next_after(self.text, moment)


@dataclass(frozen=True)
class CronEntry:
    """One schedule: where it comes from, when it fires, and what it does."""

    source: str  # "vercel" | "supabase"
    name: str
    expression: CronExpression
    action: Callable[[], str]  # returns a one-line outcome for the console
    summary: str


# -- Vercel Cron -------------------------------------------------------------


def read_vercel_crons(vercel_json: Path) -> list[tuple[str, str]]:
    """(path, schedule) of each cron in vercel.json."""
    config = json.loads(vercel_json.read_text(encoding="utf-8"))
    return [(c["path"], c["schedule"]) for c in config.get("crons", [])]


def call_like_vercel_cron(base_url: str, path: str, cron_secret: str, timeout: float = 330.0) -> tuple[int, Any]:
    """GET the path as Vercel Cron does: bearer CRON_SECRET, user agent vercel-cron/1.0."""
    request = urllib.request.Request(
        base_url.rstrip("/") + path,
        method="GET",
        headers={"Authorization": f"Bearer {cron_secret}", "User-Agent": VERCEL_CRON_USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")
    return status, body


def vercel_cron_entries(vercel_json: Path, base_url: str, cron_secret: str, cron: CronEvaluator) -> list[CronEntry]:
    entries = []
    for path, schedule in read_vercel_crons(vercel_json):

        def fire(path: str = path) -> str:
            status, body = call_like_vercel_cron(base_url, path, cron_secret)
            return f"GET {path} -> {status} {json.dumps(body, separators=(',', ':'))[:300]}"

        entries.append(CronEntry("vercel", path, cron.parse(schedule), fire, f"GET {path} as vercel-cron/1.0"))
    return entries


# -- Supabase pg_cron --------------------------------------------------------


@dataclass(frozen=True)
class ScheduleDefinition:
    job_name: str
    schedule: str
    command: str
    needs_pg_net: bool
    description: str


def read_supabase_schedules(conninfo: str) -> list[ScheduleDefinition]:
    """The pg_cron migration's schedule definitions, from the database they were migrated into."""
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        rows = conn.execute(QUERIES["schedule_definitions"]).fetchall()
    return [ScheduleDefinition(*row) for row in rows]


def read_queue_schedules(conninfo: str) -> list[tuple[str, str, bool]]:
    """The queue's own schedules (name, cron, enabled): enqueued by every worker call, not by this scheduler."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(QUERIES["queue_schedules"]).fetchall()
    return [(str(name), str(cron), bool(enabled)) for name, cron, enabled in rows]


def run_schedule_command(conninfo: str, command: str) -> list[tuple[Any, ...]]:
    """Run a schedule's SQL as pg_cron does: its own connection, one transaction."""
    with psycopg.connect(conninfo, autocommit=False, prepare_threshold=None) as conn:
        cursor = conn.execute(command.encode())  # the command text pg_cron would run, verbatim
        rows = cursor.fetchall() if cursor.description else []
        conn.commit()
    return rows


def supabase_schedule_entries(conninfo: str, definitions: Iterable[ScheduleDefinition]) -> list[CronEntry]:
    """Entries for the definitions the dev server can run: all but those needing pg_net and Vault."""
    cron = CronEvaluator(conninfo)
    entries: list[CronEntry] = []
    for definition in definitions:
        if definition.needs_pg_net:
            continue

        def fire(command: str = definition.command) -> str:
            return f"-> {run_schedule_command(conninfo, command)}"

        entries.append(
            CronEntry(
                "supabase",
                definition.job_name,
                cron.parse(definition.schedule),
                fire,
                definition.description,
            )
        )
    return entries


# -- the scheduler -------------------------------------------------------------


class CronScheduler:
    """Fires due entries at each minute boundary (UTC) until stopped."""

    def __init__(
        self,
        entries: Iterable[CronEntry],
        *,
        report: Callable[[str], None] = print,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.entries = list(entries)
        self.report = report
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._firing: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def due(self, moment: datetime) -> list[CronEntry]:
        return [e for e in self.entries if e.expression.matches(moment)]

    def tick(self, moment: datetime, *, wait: bool = False) -> list[threading.Thread]:
        """Fire every entry due at `moment`, each in its own thread."""
        threads = []
        for entry in self.due(moment):
            thread = threading.Thread(target=self._fire, args=(entry,), name=f"cron:{entry.name}", daemon=True)
            with self._lock:
                self._firing.add(thread)
            thread.start()
            threads.append(thread)
        if wait:
            for thread in threads:
                thread.join()
        return threads

    def _fire(self, entry: CronEntry) -> None:
        try:
            outcome = entry.action()
            self.report(f"[cron:{entry.source}] {entry.name}: {outcome}")
        except Exception as exc:  # noqa: BLE001 - a failed firing is reported, the scheduler goes on
            self.report(f"[cron:{entry.source}] {entry.name}: FAILED {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._firing.discard(threading.current_thread())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cron-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        moment = self.clock()
        while True:
            next_minute = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
            if self._stop.wait(max(0.0, (next_minute - self.clock()).total_seconds())):
                return
            # After a suspend (a laptop lid), fire the current minute once instead of every missed one.
            late = self.clock() - next_minute
            moment = next_minute if late < timedelta(minutes=1) else self.clock()
            self.tick(moment.replace(second=0, microsecond=0))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop firing; wait briefly for firings in flight (their HTTP calls finish or time out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            firing = list(self._firing)
        for thread in firing:
            thread.join(timeout)

"""Game Platform sync benchmark: 1,000 competitors against the fake vendor with 50 ms per call.

    python bench/bench_sync.py             # 1,000 competitors
    python bench/bench_sync.py --quick     # 200 competitors
    python bench/bench_sync.py --users 5000 --latency 0.05 --concurrency 8

Each phase runs as a real job through the worker (`lib.worker.Worker`) on a
fresh database, with the fake vendor (sandbox/game_platform.py)
answering every call after `--latency` seconds. The vendor runs in a child
process: a real one is another machine, and its CPU should not compete with
the job's threads for this interpreter's lock.

  full sync         every user's ODL solves and flash-CTF progress, then rosters
  incremental sync  5% of users have a new solve; no flash-CTF news
  totals sweep      every user flagged by the full sync

The ideal wall time of a phase is its vendor calls x latency / concurrency:
what it would take if the calls were the only cost and the thread pool were
never idle. The ratio to it (target: 1.5 or less) shows what the rest costs —
database writes, thread hand-offs, batch boundaries. Database time is the time
spent inside the job's statements (client-side, round trips included).

PostgreSQL is `DATABASE_URL`'s server when set, else an embedded one (pgserver),
as for the tests. Nothing here asserts: it prints figures and whether the target is met.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from lib.db import Database, connect  # noqa: E402
from lib.jobs.registry import default_registry  # noqa: E402
from lib.queue import Queue  # noqa: E402
from lib.settings import Settings, load_settings  # noqa: E402
from lib.worker import Worker  # noqa: E402
from sandbox.game_platform import Dataset, FakeGamePlatform, demo_dataset  # noqa: E402
from scripts.local_pg import fresh_database, postgres_server  # noqa: E402

TARGET_RATIO = 1.5


@dataclass(frozen=True)
class PhaseResult:
    name: str
    items: int
    calls: int
    wall: float
    db_seconds: float
    statements: int
    latency: float
    concurrency: int
    status: str

    @property
    def ideal(self) -> float:
        return self.calls * self.latency / self.concurrency

    @property
    def ratio(self) -> float:
        return self.wall / self.ideal if self.ideal else float("nan")

    @property
    def db_share(self) -> float:
        return self.db_seconds / self.wall if self.wall else float("nan")


class VendorProcess:
    """The fake vendor served from a child process, driven over a pipe."""

    def __init__(self, dataset: Dataset, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_vendor, args=(child, dataset, latency), daemon=True)
        self._process.start()
        self.base_url, self.token = self._conn.recv()
        self.latency = latency

    def _ask(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        return self._conn.recv()

    def requests(self) -> int:
        return int(self._ask("count"))

    def clear_requests(self) -> None:
        self._ask("clear")

    def add_solve(self, syned_user_id: str, timestamp_unix: int) -> None:
        self._ask("add_solve", syned_user_id, timestamp_unix)

    def stop(self) -> None:
        if self._process.is_alive():
            self._ask("stop")
        self._process.join(5)


def _serve_vendor(conn: Connection, dataset: Dataset, latency: float) -> None:
    fake = FakeGamePlatform(dataset, latency=latency)
    conn.send((fake.start(), fake.token))
    while True:
        command, args = conn.recv()
        if command == "count":
            conn.send(len(fake.requests))
        elif command == "clear":
            fake.clear_requests()
            conn.send(None)
        elif command == "add_solve":
            fake.add_solve(*args)
            conn.send(None)
        elif command == "stop":
            fake.stop()
            conn.send(None)
            return


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The worker logs a JSON line per event on stdout; keep the benchmark's own output readable."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def _time_statements(db: Database) -> Callable[[], float]:
    """Wrap the connection's `execute` (every statement goes through it) to add up the time spent in it."""
    spent = [0.0]
    execute = db.execute

    @functools.wraps(execute)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    db.execute = timed  # type: ignore[method-assign]
    return lambda: spent[0]


def _seed(conninfo: str, dataset: Dataset) -> tuple[int, int]:
    rows = dataset.local_rows()
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(  # the coaches, approved: a team's roster is synced only for an approved coach
            "insert into profiles (id, role, is_approved, first_name, last_name, email, game_platform_user_id)"
            " values (%(id)s, %(role)s, %(is_approved)s, %(first_name)s, %(last_name)s, %(email)s,"
            " %(game_platform_user_id)s)",
            rows["profiles"],
        )
        cur.executemany(
            "insert into competitors (id, coach_id, first_name, last_name, email, game_platform_id)"
            " values (%(id)s, %(coach_id)s, %(first_name)s, %(last_name)s, %(email)s, %(game_platform_id)s)",
            rows["competitors"],
        )
        cur.executemany(
            "insert into teams (id, coach_id, name, division, affiliation, game_platform_id)"
            " values (%(id)s, %(coach_id)s, %(name)s, %(division)s, %(affiliation)s, %(game_platform_id)s)",
            rows["teams"],
        )
        cur.executemany(
            "insert into team_members (team_id, competitor_id) values (%(team_id)s, %(competitor_id)s)",
            rows["team_members"],
        )
    return len(rows["competitors"]), len(rows["teams"])


def _run_phase(
    name: str,
    settings: Settings,
    fake: VendorProcess,
    task_type: str,
    payload: dict[str, Any],
    items: int,
) -> PhaseResult:
    with connect(settings) as db:
        Queue(db).enqueue(task_type, payload)
        fake.clear_requests()
        db_time = _time_statements(db)
        before = db.statements
        started = time.perf_counter()
        with _quiet():
            report = Worker(db, settings).drain(limit=1, force=False, trigger_source="bench")
        wall = time.perf_counter() - started
        (result,) = report.results
        status = result.status if result.last_error is None else f"{result.status}: {result.last_error}"
        return PhaseResult(
            name=name,
            items=items,
            calls=fake.requests(),
            wall=wall,
            db_seconds=db_time(),
            statements=db.statements - before,
            latency=fake.latency,
            concurrency=settings.game_platform_concurrency,
            status=status,
        )


def warm_up() -> float:
    """Import both handlers (and through them httpx) before timing: a cold start's import is not throughput."""
    started = time.perf_counter()
    for task_type in ("game_platform_sync", "game_platform_totals_sweep"):
        default_registry.get(task_type)
    return time.perf_counter() - started


def run(users: int, latency: float, concurrency: int) -> list[PhaseResult]:
    dataset = demo_dataset(users, coaches=max(1, users // 100), team_size=4, flash_ctfs=3)
    fake = VendorProcess(dataset, latency)
    try:
        with postgres_server() as admin, fresh_database(admin, prefix="bench_sync") as conninfo:
            competitors, teams = _seed(conninfo, dataset)
            settings = load_settings(
                {
                    "DATABASE_URL": conninfo,
                    "GAME_PLATFORM_API_BASE_URL": fake.base_url,
                    "GAME_PLATFORM_API_TOKEN": fake.token,
                    "GAME_PLATFORM_CONCURRENCY": str(concurrency),
                    # One invocation per phase: the benchmark measures throughput, not continuations.
                    "JOB_WORKER_MAX_DURATION_SECONDS": "3600",
                }
            )
            sync = {"dryRun": False, "coachId": None}
            results = [_run_phase("full sync", settings, fake, "game_platform_sync", sync, competitors + teams)]
            now = int(time.time())
            for user in dataset.competitors()[::20]:  # 5% of users solved something since
                fake.add_solve(user.syned_user_id, now)
            results.append(
                _run_phase("incremental sync", settings, fake, "game_platform_sync", sync, competitors + teams)
            )
            sweep = {"dryRun": False, "coachId": None, "batchSize": 1000}
            with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as conn:
                flagged = conn.execute(
                    "select count(*) as n from game_platform_sync_state where needs_totals_refresh"
                ).fetchone()
            assert flagged is not None
            results.append(
                _run_phase("totals sweep", settings, fake, "game_platform_totals_sweep", sweep, min(flagged["n"], 1000))
            )
            return results
    finally:
        fake.stop()


def _print(results: Sequence[PhaseResult], users: int) -> bool:
    header = ["phase", "items", "vendor calls", "wall", "ideal", "ratio", "DB time", "DB share", "statements", "job"]
    rows = [
        [
            r.name,
            f"{r.items:,}",
            f"{r.calls:,}",
            f"{r.wall:.2f} s",
            f"{r.ideal:.2f} s",
            f"{r.ratio:.2f}",
            f"{r.db_seconds:.2f} s",
            f"{r.db_share:.0%}",
            f"{r.statements:,}",
            r.status,
        ]
        for r in results
    ]
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("   | " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("   |" + "|".join("-" * (w + 2) for w in widths) + "|")
    full = results[0]
    met = full.ratio <= TARGET_RATIO and all(r.status == "succeeded" for r in results)
    print(
        f"\n   full sync of {users:,} competitors: {full.wall:.2f} s for {full.calls:,} calls at "
        f"{full.latency * 1000:.0f} ms / {full.concurrency} threads = {full.ratio:.2f}x the ideal "
        f"{full.ideal:.2f} s (target <= {TARGET_RATIO}): {'met' if met else 'MISSED'}; "
        f"database {full.db_share:.0%} of the wall time in {full.statements} statements.",
        flush=True,
    )
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 competitors instead of 1,000")
    parser.add_argument("--users", type=int, help="competitors to sync (default 1,000; 200 with --quick)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake vendor takes per call")
    parser.add_argument("--concurrency", type=int, default=8, help="GAME_PLATFORM_CONCURRENCY")
    args = parser.parse_args(argv)
    users = args.users or (200 if args.quick else 1000)
    print(
        f"\n== Game Platform sync: {users:,} competitors, {args.latency * 1000:.0f} ms per vendor call, "
        f"concurrency {args.concurrency}",
        flush=True,
    )
    imported = warm_up()
    print(f"   handlers and httpx imported in {imported * 1000:.0f} ms (a cold start's cost, left out below)")
    results = run(users, args.latency, args.concurrency)
    _print(results, users)
    # Timings are reported, not asserted; a job that did not succeed is a failure.
    return 0 if all(r.status == "succeeded" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Memory: peak RSS of one invocation (a fresh process) processing 10 jobs of about 1 MB payload each.

Two payload shapes of the same JSON size, because memory depends on the shape
more than on the size: one 1 MB string (few Python objects), and 1 MB of small
records (about 14,000 dicts per job, the shape of a bulk sync continuation).
The probe runs the real endpoint over HTTP: see bench/memory_probe.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import NOOP, ROOT, Report, bench_settings, heading, line, table
from lib.db import connect
from lib.queue import Queue
from scripts.local_pg import fresh_database

MB = 1_000_000


def string_payload(n: int) -> dict[str, Any]:
    return {"job": n, "blob": "x" * MB}


def records_payload(n: int) -> dict[str, Any]:
    items = []
    size = 0
    i = 0
    while size < MB:
        item = {"id": i, "name": f"competitor-{n}-{i:06d}", "score": i * 7, "solved": i % 3 == 0}
        size += len(json.dumps(item)) + 2
        items.append(item)
        i += 1
    return {"job": n, "items": items}


def _probe(conninfo: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "CRON_SECRET")}
    env["DATABASE_URL"] = conninfo
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory_probe"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_memory(admin: str, *, report: Report) -> None:
    heading("7. Memory: peak RSS of one invocation (fresh process, real endpoint) over 10 jobs of ~1 MB each")
    rows = []
    peaks = {}
    for shape, make in (("one 1 MB string", string_payload), ("1 MB of small records", records_payload)):
        payloads = [make(n) for n in range(10)]
        size = sum(len(json.dumps(p)) for p in payloads) / 10 / MB
        with fresh_database(admin, "bench_memory") as conninfo:
            with connect(bench_settings(conninfo)) as db:
                Queue(db).enqueue_batch(NOOP, payloads)
            probe = _probe(conninfo)
        if probe["status"] != 200 or probe["succeeded"] != 10:
            raise RuntimeError(f"the memory probe did not process 10 jobs: {probe}")
        peaks[shape] = probe["rss_peak_mb"]
        rows.append(
            [
                shape,
                f"{size:.2f} MB",
                f"{probe['rss_start_mb']:.0f} MB",
                f"{probe['rss_import_mb']:.0f} MB",
                f"{probe['rss_peak_mb']:.1f} MB",
            ]
        )
    print(table(rows, ["payload shape", "JSON per job", "RSS at start", "after import", "peak"]))
    line("the claim fetches the 10 payloads as JSON text; each is decoded only while its handler runs")
    worst = max(peaks.values())
    report.add(
        "7. peak RSS, 10 jobs × 1 MB",
        ", ".join(f"{v:.1f} MB ({k})" for k, v in peaks.items()),
        "< 100 MB",
        worst < 100,
    )

"""One worker invocation in a fresh process, for the memory measurement (run by bench/memory.py).

Loads api/jobs/run.py by path, serves it on 127.0.0.1, sends it one
`POST {"limit": 10}` with the runner secret, and prints one JSON line: the
process's peak RSS after start-up, after the import, and after the request.

Run as: DATABASE_URL=... python -m bench.memory_probe
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import resource
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-runner-secret"


def peak_rss_mb() -> float:
    """This process's RSS high-water mark (VmHWM).

    Not `getrusage().ru_maxrss`: Linux carries that across exec, so it would
    report the parent's size at fork time.
    """
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmHWM:"):
            return int(text.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    at_start = peak_rss_mb()
    os.environ["JOB_QUEUE_RUNNER_SECRET"] = SECRET
    spec = importlib.util.spec_from_file_location("api_jobs_run", ROOT / "api" / "jobs" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    from bench.common import noop_registry

    handler = type("handler", (module.handler,), {"registry": noop_registry()})  # the bench's task types only
    after_import = peak_rss_mb()

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=120)
    body = json.dumps({"limit": 10})
    headers = {"x-job-runner-secret": SECRET, "Content-Type": "application/json"}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the worker's JSON log lines
        conn.request("POST", "/api/jobs/run", body, headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
    server.shutdown()
    print(
        json.dumps(
            {
                "status": response.status,
                "processed": answer.get("processed"),
                "succeeded": answer.get("succeeded"),
                "rss_start_mb": at_start,
                "rss_import_mb": after_import,
                "rss_peak_mb": peak_rss_mb(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A worker in its own process, serving api/jobs/run.py with the test tasks registered.

Used where a test must kill the worker (SIGKILL mid-job). Prints its port, then serves.
Run as: python -m tests.support.worker_process
"""

from __future__ import annotations

import sys

from scripts.local_http import LocalHTTPServer
from tests.support.api import load_api_module, serving
from tests.support.tasks import test_registry


def main() -> None:
    module = load_api_module("api/jobs/run.py")
    server = LocalHTTPServer(("127.0.0.1", 0), serving(module.handler, test_registry()))
    print(server.server_address[1], flush=True)
    sys.stdout.flush()
    server.serve_forever(0.05)


if __name__ == "__main__":
    main()

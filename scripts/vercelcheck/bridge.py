"""Serve a built function through vercel-runtime's bridge (vc_init.py), as Vercel does.

The bundle's trampoline (vc__handler__python.py) imports `vercel_runtime.vc_init`,
which imports the api file and serves its `handler` class on a local HTTP server.
Two ways in, both used on Vercel:

- IPC mode (VERCEL_IPC_PATH set): the bridge connects to a Unix socket, reports
  `server-started` with its port, and sends every log line as a `log` message
  tied to the request (`handler-started` … `end`). Requests arrive over HTTP with
  Vercel's internal invocation headers. Here the check plays the platform's part.
- Event mode: the Lambda runtime calls `vc_handler(event, context)`, which
  proxies the event to that server (scripts/vercel/event_driver.py).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from scripts.vercelcheck.build import CheckFailed

EVENT_DRIVER = Path(__file__).resolve().parents[1] / "vercel" / "event_driver.py"
START_TIMEOUT = 60.0


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    logs: list[str]  # the log lines the request produced, as the platform would store them


def function_env(lambda_env: Mapping[str, str], app_env: Mapping[str, str]) -> dict[str, str]:
    """What a function process sees: the Lambda's environment and the project's variables, nothing else."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tempfile.gettempdir(), "TZ": "UTC"}
    env.update(lambda_env)
    env.update(app_env)
    return env


class IpcBridge:
    """One function instance in IPC mode: this object is the platform's side of the socket."""

    def __init__(self, python: str, bundle: Path, env: Mapping[str, str]) -> None:
        self.python, self.bundle, self.env = python, bundle, dict(env)
        self._tmp = tempfile.TemporaryDirectory(prefix="vc-ipc-")
        self.socket_path = os.path.join(self._tmp.name, "ipc.sock")
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._next_invocation = 0
        self.port = 0
        self.init_duration_ms = 0
        self.stray_output = b""

    def __enter__(self) -> IpcBridge:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        listener.listen(1)
        listener.settimeout(START_TIMEOUT)
        self._output = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [self.python, "-s", "-c", "import vc__handler__python"],
            cwd=self.bundle,
            env={**self.env, "VERCEL_IPC_PATH": self.socket_path},
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        try:
            self._conn, _ = listener.accept()
        except TimeoutError:
            self._fail("never connected to the IPC socket")
        finally:
            listener.close()
        threading.Thread(target=self._read, daemon=True).start()
        started = self._wait(lambda m: m.get("type") == "server-started", START_TIMEOUT)
        if started is None:
            self._fail("never reported server-started")
        self.port = int(started["payload"]["httpPort"])
        self.init_duration_ms = int(started["payload"].get("initDuration", 0))
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._conn.close()
        self._output.seek(0)
        self.stray_output = self._output.read()
        self._output.close()
        self._tmp.cleanup()

    def _fail(self, what: str) -> NoReturn:
        self.process.kill()
        self.process.wait()
        self._output.seek(0)
        output = self._output.read().decode(errors="replace")
        raise CheckFailed(f"{self.bundle.name}: the bridge {what}; its output:\n{output}")

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            with self._cond:
                self.messages.extend(json.loads(part) for part in complete if part)
                self._cond.notify_all()

    def _wait(self, match: Any, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    return None
                self._cond.wait(min(left, 0.5))

    def logs_of(self, invocation: str) -> list[str]:
        with self._cond:
            return [
                base64.b64decode(m["payload"]["message"]).decode(errors="replace")
                for m in self.messages
                if m.get("type") == "log" and m["payload"]["context"]["invocationId"] == invocation
            ]

    def request(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> Answer:
        self._next_invocation += 1
        invocation = f"inv-{self._next_invocation}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            conn.putheader("x-vercel-internal-invocation-id", invocation)
            conn.putheader("x-vercel-internal-request-id", str(self._next_invocation))
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body)
            response = conn.getresponse()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            data = response.read()
        finally:
            conn.close()

        def ended(m: dict[str, Any]) -> bool:
            return m.get("type") == "end" and m["payload"]["context"]["invocationId"] == invocation

        if self._wait(ended, 30) is None:
            raise CheckFailed(f"{self.bundle.name}: no IPC `end` message for {method} {path}")
        lines = "".join(self.logs_of(invocation)).splitlines()
        return Answer(response.status, answer_headers, data, lines)


def event_mode(
    python: str, bundle: Path, env: Mapping[str, str], requests: list[tuple[str, str, Mapping[str, str], bytes | None]]
) -> tuple[list[Answer], list[str]]:
    """Send `requests` through vc_handler(event, context) in one fresh process; also return its output lines."""
    with tempfile.TemporaryDirectory(prefix="vc-event-") as tmp:
        requests_file, responses_file = Path(tmp, "requests.json"), Path(tmp, "responses.json")
        payloads = [
            {
                "method": method,
                "path": path,
                "headers": dict(headers),
                "body": base64.b64encode(body or b"").decode(),
                "encoding": "base64",
            }
            for method, path, headers, body in requests
        ]
        requests_file.write_text(json.dumps(payloads))
        done = subprocess.run(
            [python, "-s", str(EVENT_DRIVER), str(requests_file), str(responses_file)],
            cwd=bundle,
            env=dict(env),
            capture_output=True,
            timeout=300,
            check=False,
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0 or not responses_file.exists():
            raise CheckFailed(f"{bundle.name}: event mode failed (exit {done.returncode}):\n{output}")
        answers = []
        for raw in json.loads(responses_file.read_text()):
            body = raw.get("body", "")
            data = base64.b64decode(body) if raw.get("encoding") == "base64" else body.encode()
            headers = {k.lower(): v if isinstance(v, str) else ",".join(v) for k, v in raw["headers"].items()}
            answers.append(Answer(raw["statusCode"], headers, data, []))
        return answers, output.splitlines()

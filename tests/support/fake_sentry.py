"""A local Sentry ingest endpoint: accepts envelopes as sentry.io does and keeps the events."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler
from typing import Any

from scripts.local_http import LocalHTTPServer


class FakeSentry:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    raw = gzip.decompress(raw)
                elif encoding == "deflate":
                    raw = zlib.decompress(raw)
                elif encoding == "br":
                    import brotli  # type: ignore[import-not-found]

                    raw = brotli.decompress(raw)
                owner._collect(raw)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/1"

    def _collect(self, envelope: bytes) -> None:
        lines = envelope.split(b"\n")
        # Envelope: a header line, then (item header, item payload) pairs.
        i = 1
        while i + 1 < len(lines):
            item_header = json.loads(lines[i])
            payload = lines[i + 1]
            if item_header.get("type") == "event":
                with self._lock:
                    self.events.append(json.loads(payload))
            i += 2

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

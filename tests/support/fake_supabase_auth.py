"""A local stand-in for Supabase Auth, honouring the two calls the admin check makes.

- `GET /auth/v1/user` with `apikey` and `Authorization: Bearer <token>`: 200 with
  the user when the token is one it issued (and is unexpired), 401 without a
  valid apikey or for any other token, like GoTrue (401 `no_authorization` /
  403 `bad_jwt`).
- `GET /auth/v1/.well-known/jwks.json`: the public keys it publishes (`{"keys": []}`
  for a project still on the legacy JWT secret), `Cache-Control: max-age=600`.

`mode` makes it misbehave: `hang` (accept, never answer), `error` (500).
It counts the calls, so tests can see what was cached.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import jwt

from scripts.local_http import LocalHTTPServer


class FakeSupabaseAuth:
    def __init__(self, anon_key: str) -> None:
        self.anon_key = anon_key
        self.users: dict[str, dict[str, Any]] = {}  # token → user
        self.jwks: list[dict[str, Any]] = []
        self.jwks_status = 200
        self.mode = "ok"
        self.calls: Counter[str] = Counter()
        self.seen_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self.server = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def issue(self, token: str, user_id: Any) -> str:
        """Make `token` one this server answers for (as its user `user_id`)."""
        self.users[token] = {"id": str(user_id), "aud": "authenticated", "role": "authenticated"}
        return token

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: Any, **headers: str) -> None:
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.calls[path] += 1
            self.seen_headers.append({k.lower(): v for k, v in handler.headers.items()})
        if self.mode == "hang":
            self._release.wait(30)
            return
        if self.mode == "error":
            self._answer(handler, 500, {"code": 500, "msg": "Internal Server Error"})
            return
        if path == "/auth/v1/.well-known/jwks.json":
            self._answer(handler, self.jwks_status, {"keys": self.jwks}, **{"Cache-Control": "public, max-age=600"})
            return
        if path != "/auth/v1/user":
            self._answer(handler, 404, {"code": 404, "msg": "Not Found"})
            return
        if handler.headers.get("apikey") != self.anon_key:
            self._answer(handler, 401, {"message": "Invalid API key"})
            return
        auth = handler.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        user = self.users.get(token)
        if not auth.startswith("Bearer ") or user is None:
            self._answer(handler, 403, {"code": 403, "error_code": "bad_jwt", "msg": "invalid JWT"})
            return
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
        if exp <= time.time():
            self._answer(handler, 403, {"code": 403, "error_code": "bad_jwt", "msg": "token is expired"})
            return
        self._answer(handler, 200, user)

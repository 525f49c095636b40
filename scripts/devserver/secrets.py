"""Local secrets for the dev server, and an admin access token signed with the local JWT secret.

A variable set in the environment wins. Otherwise a random value is generated
once and kept in `<data dir>/secrets.json` (git-ignored with the rest of
`.dev/`), so curl commands and tokens printed by one run still work after a
restart.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt

GENERATED = ("CRON_SECRET", "JOB_QUEUE_RUNNER_SECRET", "SUPABASE_JWT_SECRET", "GAME_PLATFORM_API_TOKEN")
SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class LocalSecret:
    name: str
    value: str
    from_environment: bool

    @property
    def shell(self) -> str:
        """How a printed curl command refers to it: the value when we made it, else the variable."""
        return f'"${self.name}"' if self.from_environment else self.value


def load_local_secrets(data_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, LocalSecret]:
    path = data_dir / SECRETS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = {k: str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
        except ValueError:
            stored = {}
    result: dict[str, LocalSecret] = {}
    changed = False
    for name in GENERATED:
        env_value = environ.get(name, "").strip()
        if env_value:
            result[name] = LocalSecret(name, env_value, from_environment=True)
            continue
        if not stored.get(name):
            stored[name] = "dev-" + secrets.token_urlsafe(24)
            changed = True
        result[name] = LocalSecret(name, stored[name], from_environment=False)
    if changed:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return result


def admin_access_token(jwt_secret: str, user_id: str, email: str | None, ttl_seconds: int = 12 * 3600) -> str:
    """A Supabase-shaped access token (HS256, aud "authenticated") for `user_id`, valid for `ttl_seconds`."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "aud": "authenticated",
        "role": "authenticated",
        "iss": "scripts/dev.py",
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if email:
        claims["email"] = email
    return jwt.encode(claims, jwt_secret, algorithm="HS256")

"""Supabase-shaped access tokens, session cookies and profiles for the admin tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JWT_SECRET = "test-supabase-jwt-secret-with-at-least-32-bytes!"
ANON_KEY = "test-anon-key-3c91"
PROJECT_REF = "testproject"

ADMIN_ID = uuid.UUID("00000000-0000-4000-8000-00000000a001")
COACH_ID = uuid.UUID("00000000-0000-4000-8000-00000000c001")
STRANGER_ID = uuid.UUID("00000000-0000-4000-8000-00000000f001")  # valid token, no profile


def claims(sub: uuid.UUID | str = ADMIN_ID, *, expires_in: float = 3600, **overrides: Any) -> dict[str, Any]:
    """What Supabase Auth puts in an access token."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": f"https://{PROJECT_REF}.supabase.co/auth/v1",
        "sub": str(sub),
        "aud": "authenticated",
        "exp": int(now + expires_in),
        "iat": now,
        "role": "authenticated",
        "email": "someone@example.com",
        "session_id": str(uuid.uuid4()),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def hs256(sub: uuid.UUID | str = ADMIN_ID, *, secret: str = JWT_SECRET, **kwargs: Any) -> str:
    return jwt.encode(claims(sub, **kwargs), secret, algorithm="HS256")


def unsigned(sub: uuid.UUID | str = ADMIN_ID, **kwargs: Any) -> str:
    """An `alg: none` token: header and claims, empty signature."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims(sub, **kwargs))}."


class SigningKey:
    """An asymmetric signing key as Supabase's JWT signing keys system uses (ES256 or RS256)."""

    def __init__(self, algorithm: str = "ES256", kid: str | None = None) -> None:
        self.algorithm = algorithm
        self.kid = kid or f"key-{uuid.uuid4().hex[:8]}"
        if algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(algorithm)

    def sign(self, sub: uuid.UUID | str = ADMIN_ID, *, kid: str | None = None, **kwargs: Any) -> str:
        return jwt.encode(
            claims(sub, **kwargs), self.private, algorithm=self.algorithm, headers={"kid": kid or self.kid}
        )

    def jwk(self) -> dict[str, Any]:
        """The public half, as published in the project's JWKS."""
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        public = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "alg": self.algorithm, "use": "sig", "key_ops": ["verify"]}


def session_cookie_value(access_token: str) -> str:
    """What @supabase/ssr stores: `base64-` + unpadded base64url of the session JSON."""
    session = {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": 3600,
        "expires_at": int(time.time()) + 3600,
        "refresh_token": "refresh-" + uuid.uuid4().hex,
        "user": {"id": str(ADMIN_ID), "aud": "authenticated", "role": "authenticated", "email": "a@example.com"},
    }
    encoded = base64.urlsafe_b64encode(json.dumps(session).encode()).decode().rstrip("=")
    return "base64-" + encoded


def session_cookies(access_token: str, *, ref: str = PROJECT_REF, chunk_size: int | None = None) -> str:
    """A Cookie header holding the session, split into `.0`, `.1`, … chunks when `chunk_size` is given."""
    value = session_cookie_value(access_token)
    name = f"sb-{ref}-auth-token"
    if chunk_size is None:
        return f"{name}={value}"
    chunks = [value[i : i + chunk_size] for i in range(0, len(value), chunk_size)]
    return "; ".join(f"{name}.{i}={chunk}" for i, chunk in enumerate(chunks))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_headers() -> dict[str, str]:
    """An admin's bearer token, verified with SUPABASE_JWT_SECRET."""
    return bearer(hs256(ADMIN_ID))


def coach_headers() -> dict[str, str]:
    return bearer(hs256(COACH_ID))


def add_profiles(sql: Any) -> None:
    """An admin and a coach; STRANGER_ID has no profile."""
    sql.execute(
        "insert into profiles (id, role, email) values (%s, 'admin', 'admin@example.com'), "
        "(%s, 'coach', 'coach@example.com') on conflict (id) do update set role = excluded.role",
        (ADMIN_ID, COACH_ID),
    )

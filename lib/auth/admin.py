"""Admin sessions: a Supabase user whose `profiles.role` is `'admin'`.

Credentials, in this order:
- `Authorization: Bearer <access token>` (the dashboard's fetch calls, curl);
- the Supabase SSR cookie `sb-<ref>-auth-token`: `base64-` + unpadded base64url
  of the session JSON, possibly split into `.0`, `.1`, … chunks joined in order;
  the access token is the session's `access_token`.

Verifying the token:
- `SUPABASE_JWT_SECRET` set (the legacy shared secret): HS256 locally and nothing
  else — signature, `exp`, `aud == "authenticated"`. Every other algorithm is
  refused, `none` included, so a token cannot pick its own verification.
- Otherwise, as supabase-js's `getClaims()` does: an ES256/RS256 token whose `kid`
  is published at `$SUPABASE_URL/auth/v1/.well-known/jwks.json` is verified
  locally against that key (the key set is cached for at most 10 minutes, as
  Supabase's own Cache-Control says); any other token is sent to
  `GET $SUPABASE_URL/auth/v1/user`, whose positive answer is cached for at most
  60 s and never past the token's `exp`, and a refusal for 10 s. Supabase Auth
  slow or down → 503.

Then the user's profile decides: no profile → 401, a role other than `admin` → 403.

PyJWT, cryptography and httpx are imported inside the functions that need them:
the worker (`api/jobs/run.py`) never imports this module, and the admin
endpoints pay for them only when a request arrives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from lib.auth.runner import bearer_token
from lib.db import Database, connect
from lib.errors import ConfigurationError, Forbidden, ServiceUnavailable, Unauthorized
from lib.http import Request
from lib.json_input import parse_json
from lib.observability import log
from lib.settings import Settings, secret_value
from lib.sql import load_queries

QUERIES = load_queries(__file__, "admin.sql")

if TYPE_CHECKING:
    import httpx

AUDIENCE = "authenticated"
HS256 = "HS256"
ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256"})
ACCEPTED_ALGORITHMS = ASYMMETRIC_ALGORITHMS | {HS256}

JWKS_MAX_AGE_SECONDS = 600.0  # Supabase serves the key set with a 10-minute Cache-Control
JWKS_REFRESH_ON_MISS_SECONDS = 30.0  # an unknown kid may be a freshly rotated key: refetch, but not often
REMOTE_CACHE_SECONDS = 60.0
REMOTE_REFUSAL_CACHE_SECONDS = 10.0
REMOTE_CACHE_ENTRIES = 1024  # per kind: yeses and refusals are bounded separately
MAX_TOKEN_CHARS = 16 * 1024

_COOKIE_NAME = re.compile(r"^sb-(?P<ref>.+?)-auth-token(?:\.(?P<chunk>\d{1,3}))?$")

NO_SESSION = (
    "Sign in as an admin: send Authorization: Bearer <Supabase access token> or the sb-<ref>-auth-token cookie."
)
INVALID_SESSION = "The session is invalid; sign in again."
EXPIRED_SESSION = "The session has expired; sign in again."

# Wall clock for token expiry and cache ages; tests replace it.
_clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class SessionUser:
    """A Supabase user whose access token was verified; not yet known to be an admin."""

    user_id: UUID
    verified_by: str  # hs256 | jwks | supabase_auth
    source: str  # bearer | cookie


@dataclass(frozen=True, slots=True)
class AdminSession:
    user_id: UUID
    verified_by: str
    source: str


# -- credentials ---------------------------------------------------------------------


def _project_ref(settings: Settings) -> str | None:
    """The `<ref>` of the cookie name supabase-js derives from the project URL."""
    if not settings.supabase_url:
        return None
    host = urlsplit(settings.supabase_url).hostname or ""
    return host.split(".")[0] or None


def _cookies(header: str) -> list[tuple[str, str]]:
    """Parse a Cookie header leniently: browsers send values SimpleCookie rejects."""
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        pairs.append((name.strip(), value))
    return pairs


def _session_cookie_value(header: str, preferred_ref: str | None) -> str | None:
    """The session cookie's value, its chunks joined; None when there is none."""
    by_ref: dict[str, dict[int | None, str]] = {}
    for name, value in _cookies(header):
        match = _COOKIE_NAME.match(name)
        if match:
            chunk = match["chunk"]
            by_ref.setdefault(match["ref"], {})[int(chunk) if chunk is not None else None] = value
    if not by_ref:
        return None
    if preferred_ref in by_ref:
        parts = by_ref[preferred_ref]
    elif len(by_ref) == 1:
        parts = next(iter(by_ref.values()))
    else:
        raise Unauthorized("Several Supabase session cookies were sent and none matches SUPABASE_URL; " + NO_SESSION)
    if None in parts:
        return parts[None]
    chunks = []
    index = 0
    while index in parts:
        chunks.append(parts[index])
        index += 1
    return "".join(chunks) or None


def access_token_from_cookie(header: str, preferred_ref: str | None = None) -> str | None:
    """The access token inside a Supabase SSR session cookie (single or chunked)."""
    value = _session_cookie_value(header, preferred_ref)
    if value is None:
        return None
    try:
        if value.startswith("base64-"):
            encoded = value.removeprefix("base64-")
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
        else:  # older @supabase/ssr and auth-helpers stored URL-encoded JSON
            text = unquote(value)
        session = parse_json(text)  # depth-limited: a cookie nested 100,000 deep is just unreadable
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Unauthorized("The Supabase session cookie cannot be read; sign in again.") from None
    token: Any = None
    if isinstance(session, dict):
        token = session.get("access_token")
    elif isinstance(session, list) and session:  # supabase-js v1: [access_token, refresh_token, …]
        token = session[0]
    if not isinstance(token, str) or not token:
        raise Unauthorized("The Supabase session cookie holds no access token; sign in again.")
    return token


def session_token(request: Request, settings: Settings) -> tuple[str, str]:
    """The presented access token and where it came from (`bearer` or `cookie`); 401 when none."""
    token = bearer_token(request)
    if token:
        return token, "bearer"
    cookie_header = request.header("cookie")
    if cookie_header:
        token = access_token_from_cookie(cookie_header, _project_ref(settings))
        if token:
            return token, "cookie"
    raise Unauthorized(NO_SESSION)


# -- token verification --------------------------------------------------------------


def _user_id(claims: Mapping[str, Any]) -> UUID:
    try:
        return UUID(str(claims.get("sub")))
    except ValueError:
        raise Unauthorized(INVALID_SESSION) from None


def _decode_verified(token: str, key: Any, algorithm: str) -> dict[str, Any]:
    """Verify signature, `exp` and `aud` with exactly one algorithm."""
    import jwt

    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"], "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized(EXPIRED_SESSION) from None
    except jwt.PyJWTError:
        raise Unauthorized(INVALID_SESSION) from None


def _unverified_claims(token: str) -> dict[str, Any]:
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthorized(INVALID_SESSION) from None
    return claims


def verify_access_token(token: str, settings: Settings, *, source: str = "bearer") -> SessionUser:
    """Verify a Supabase access token; raise 401 (invalid/expired) or 503 (Supabase Auth unavailable)."""
    import jwt

    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized(INVALID_SESSION)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized(INVALID_SESSION) from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ACCEPTED_ALGORITHMS:
        raise Unauthorized(INVALID_SESSION)

    secret = secret_value(settings.supabase_jwt_secret)
    if secret:
        if algorithm != HS256:
            raise Unauthorized(INVALID_SESSION)
        claims = _decode_verified(token, secret, HS256)
        return SessionUser(_user_id(claims), "hs256", source)

    if not settings.supabase_url:
        raise ConfigurationError(
            "Admin sessions cannot be verified: set SUPABASE_JWT_SECRET, or SUPABASE_URL and SUPABASE_ANON_KEY."
        )
    # Reject what Supabase would reject anyway without a round trip to it.
    claims = _unverified_claims(token)
    expires_at = claims.get("exp")
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        raise Unauthorized(INVALID_SESSION)
    if expires_at <= _clock():
        raise Unauthorized(EXPIRED_SESSION)

    if algorithm in ASYMMETRIC_ALGORITHMS:
        kid = header.get("kid")
        key = _jwks.signing_key(settings, kid if isinstance(kid, str) else None, algorithm)
        if key is not None:
            verified = _decode_verified(token, key, algorithm)
            return SessionUser(_user_id(verified), "jwks", source)
    return SessionUser(_supabase_auth.user_id(token, float(expires_at), settings), "supabase_auth", source)


def _http_client(settings: Settings) -> httpx.Client:
    import httpx

    return httpx.Client(timeout=httpx.Timeout(settings.supabase_auth_timeout_seconds), follow_redirects=False)


def _auth_url(settings: Settings, path: str) -> str:
    assert settings.supabase_url
    return settings.supabase_url.rstrip("/") + path


def _max_age(cache_control: str | None) -> float | None:
    match = re.search(r"max-age=(\d+)", cache_control or "")
    return float(match[1]) if match else None


@dataclass
class _KeySet:
    keys: dict[str, Any]  # kid → PyJWK
    fetched_at: float
    expires_at: float


class _JwksCache:
    """The project's published signing keys, fetched at most every 10 minutes.

    Symmetric (`oct`) keys and keys of other algorithms are never taken from the
    set: a published key must not let a token choose HS256 against it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, _KeySet] = {}

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()

    def signing_key(self, settings: Settings, kid: str | None, algorithm: str) -> Any | None:
        """The published key for `kid` and `algorithm`, or None (then Supabase Auth decides)."""
        if kid is None:
            return None
        url = _auth_url(settings, "/auth/v1/.well-known/jwks.json")
        with self._lock:
            now = _clock()
            cached = self._sets.get(url)
            stale = cached is None or cached.expires_at <= now
            missing_recheck = (
                cached is not None
                and kid not in cached.keys
                and now - cached.fetched_at >= JWKS_REFRESH_ON_MISS_SECONDS
            )
            if stale or missing_recheck:
                # Fetched under the lock: concurrent requests wait for one fetch rather than each making it.
                cached = self._fetch(url, settings, now)
            key = cached.keys.get(kid) if cached is not None else None
        if key is None or key.algorithm_name != algorithm:
            return None
        return key.key

    def _fetch(self, url: str, settings: Settings, now: float) -> _KeySet:
        import httpx
        import jwt

        headers = {"accept": "application/json"}
        anon_key = secret_value(settings.supabase_anon_key)
        if anon_key:
            headers["apikey"] = anon_key
        try:
            with _http_client(settings) as client:
                response = client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            log("auth.jwks_unreachable", "warning", error=type(exc).__name__)
            raise ServiceUnavailable("Supabase Auth is unreachable; try again shortly.") from None
        if response.status_code != 200:
            # No asymmetric keys published (or a hiccup): tokens go to /auth/v1/user instead,
            # and the set is asked for again only after a short while.
            log("auth.jwks_unavailable", "info", status=response.status_code)
            empty = _KeySet(keys={}, fetched_at=now, expires_at=now + JWKS_REFRESH_ON_MISS_SECONDS)
            self._sets[url] = empty
            return empty
        keys: dict[str, Any] = {}
        try:
            published = response.json().get("keys", [])
        except (ValueError, AttributeError):
            published = []
        for entry in published if isinstance(published, list) else []:
            if not isinstance(entry, dict) or entry.get("kty") not in ("EC", "RSA"):
                continue
            if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
                continue
            try:
                jwk = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
            if jwk.algorithm_name in ASYMMETRIC_ALGORITHMS:
                keys[entry["kid"]] = jwk
        max_age = min(JWKS_MAX_AGE_SECONDS, _max_age(response.headers.get("cache-control")) or JWKS_MAX_AGE_SECONDS)
        key_set = _KeySet(keys=keys, fetched_at=now, expires_at=now + max_age)
        self._sets[url] = key_set
        return key_set


class _SupabaseAuthCache:
    """Asks `GET /auth/v1/user`, and remembers its answer briefly.

    A yes is kept for ≤60 s and never past the token's `exp`; a refusal for 10 s,
    so a client replaying a plausible bad token costs one call to Supabase Auth
    per 10 s rather than one per request, and a token refused by mistake (a
    session not yet propagated) works again soon. Yeses and refusals are kept
    apart, each bounded, so a flood of bad tokens cannot evict the good ones.
    Entries are keyed by a SHA-256 of the project URL and token: a token is never
    stored. An unavailable Supabase Auth (503) is not remembered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[UUID, float]] = OrderedDict()
        self._refusals: OrderedDict[str, float] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._refusals.clear()

    def user_id(self, token: str, token_expires_at: float, settings: Settings) -> UUID:
        cache_key = hashlib.sha256(f"{settings.supabase_url}\0{token}".encode()).hexdigest()
        now = _clock()
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is not None and entry[1] > now:
                return entry[0]
            refused_until = self._refusals.get(cache_key)
            if refused_until is not None and refused_until > now:
                raise Unauthorized(INVALID_SESSION)
        try:
            user_id = self._ask(token, settings)
        except Unauthorized:
            with self._lock:
                _remember(self._refusals, cache_key, now + REMOTE_REFUSAL_CACHE_SECONDS)
            raise
        with self._lock:
            self._refusals.pop(cache_key, None)
            _remember(self._entries, cache_key, (user_id, min(now + REMOTE_CACHE_SECONDS, token_expires_at)))
        return user_id

    def _ask(self, token: str, settings: Settings) -> UUID:
        import httpx

        anon_key = secret_value(settings.supabase_anon_key)
        if not anon_key:
            raise ConfigurationError(
                "SUPABASE_ANON_KEY is not set: Supabase Auth cannot be asked to verify admin sessions."
            )
        headers = {"apikey": anon_key, "authorization": f"Bearer {token}", "accept": "application/json"}
        try:
            with _http_client(settings) as client:
                response = client.get(_auth_url(settings, "/auth/v1/user"), headers=headers)
        except httpx.TimeoutException:
            log("auth.supabase_timeout", "warning", timeout_seconds=settings.supabase_auth_timeout_seconds)
            raise ServiceUnavailable(
                f"Supabase Auth did not answer within {settings.supabase_auth_timeout_seconds:g} s; try again shortly."
            ) from None
        except httpx.HTTPError as exc:
            log("auth.supabase_unreachable", "warning", error=type(exc).__name__)
            raise ServiceUnavailable("Supabase Auth is unreachable; try again shortly.") from None
        status = response.status_code
        if status in (400, 401, 403, 404, 422):
            raise Unauthorized(INVALID_SESSION)
        if status != 200:
            log("auth.supabase_error", "warning", status=status)
            raise ServiceUnavailable(f"Supabase Auth answered {status}; try again shortly.")
        try:
            user = response.json()
            return UUID(str(user["id"]))
        except (ValueError, KeyError, TypeError):
            log("auth.supabase_unexpected_answer", "warning", status=status)
            raise ServiceUnavailable("Supabase Auth gave an unexpected answer; try again shortly.") from None


def _remember(entries: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Store as the newest entry, dropping the oldest beyond REMOTE_CACHE_ENTRIES (caller holds the lock)."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > REMOTE_CACHE_ENTRIES:
        entries.popitem(last=False)


_jwks = _JwksCache()
_supabase_auth = _SupabaseAuthCache()


def reset_caches() -> None:
    """Forget cached key sets and verified tokens (tests, key revocation drills)."""
    _jwks.clear()
    _supabase_auth.clear()


# -- the admin check -----------------------------------------------------------------


def authenticate(request: Request, settings: Settings) -> SessionUser:
    """The request's verified Supabase user, before any database work; 401/503 otherwise."""
    token, source = session_token(request, settings)
    try:
        return verify_access_token(token, settings, source=source)
    except Unauthorized as exc:
        log("auth.session_refused", "info", path=request.path, source=source, reason=exc.message)
        raise


def authorize_admin(db: Database, user: SessionUser) -> AdminSession:
    """Admit `user` if their profile's role is `admin`: 401 without a profile, 403 otherwise."""
    row = db.fetchone(QUERIES["profile_role"], {"user_id": user.user_id})
    if row is None:
        log("auth.no_profile", "info", user_id=str(user.user_id))
        raise Unauthorized("No profile exists for this user; sign in with an admin account.")
    if row["role"] != "admin":
        log("auth.not_admin", "info", user_id=str(user.user_id))
        raise Forbidden("This endpoint is for admins only.")
    return AdminSession(user.user_id, user.verified_by, user.source)


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
CROSS_SITE = "Cross-site requests cannot use the session cookie."


def request_origins(request: Request, settings: Settings) -> frozenset[str]:
    """The origins (`scheme://host[:port]`) this request may legitimately come from.

    The host is the `Host` header: Vercel and the dev server set it to the name
    the browser used. `X-Forwarded-Host` and `X-Forwarded-Proto` are client-sent
    text unless a proxy in front overwrites them, so they count only with
    `ADMIN_TRUST_FORWARDED_HEADERS=true`. Without them the scheme is `https`
    (Vercel serves nothing else), or `http` as well for a loopback host (the dev
    server), so a page on `http://` cannot act for the `https://` site.
    """
    host = request.header("host") or ""
    forwarded_scheme = None
    if settings.admin_trust_forwarded_headers:
        host = request.header("x-forwarded-host") or host
        forwarded_scheme = (request.header("x-forwarded-proto") or "").split(",")[0].strip().lower() or None
    host = host.split(",")[0].strip().lower()
    if not host:
        return frozenset()
    if forwarded_scheme in ("http", "https"):
        schemes = [forwarded_scheme]
    else:
        try:
            hostname = urlsplit(f"//{host}").hostname or ""
        except ValueError:  # an unbalanced "[" in the Host header
            return frozenset()
        loopback = hostname in LOOPBACK_HOSTS or f"[{hostname}]" in LOOPBACK_HOSTS
        schemes = ["https", "http"] if loopback else ["https"]
    return frozenset(f"{scheme}://{host}" for scheme in schemes)


def refuse_cross_site(request: Request, user: SessionUser, settings: Settings) -> None:
    """A cookie travels with any request the browser makes: refuse cross-site state changes.

    Bearer tokens are attached by the dashboard's own code, so they need no such check.
    A state change with the cookie must not say `Sec-Fetch-Site: cross-site`, and
    its `Origin`, when sent, must be this site's scheme and host (`request_origins`).
    """
    if user.source != "cookie" or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if (request.header("sec-fetch-site") or "").lower() == "cross-site":
        raise Forbidden(CROSS_SITE)
    origin = request.header("origin")
    if origin is None:
        return
    origin = origin.strip().lower().rstrip("/")
    if origin not in request_origins(request, settings):
        log("auth.cross_site_refused", "info", path=request.path)
        raise Forbidden(CROSS_SITE)


@contextmanager
def admin_connection(request: Request, settings: Settings) -> Iterator[tuple[Database, AdminSession]]:
    """Verify the session, then open the invocation's connection and check the role on it.

    The token is checked before connecting, so a request without a valid session
    costs no database connection.
    """
    user = authenticate(request, settings)
    refuse_cross_site(request, user, settings)
    with connect(settings) as db:
        yield db, authorize_admin(db, user)

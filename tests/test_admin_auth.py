"""Admin sessions through a real admin endpoint over HTTP: tokens, cookies, remote verification, JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from psycopg.rows import dict_row

from lib.auth import admin as admin_auth
from scripts.local_pg import create_database, drop_database
from scripts.migrate import apply_migrations, ensure_supabase_compatibility
from tests.support.api import ROOT
from tests.support.fake_supabase_auth import FakeSupabaseAuth
from tests.support.secrets import CRON_SECRET, RUNNER_SECRET, runner_headers
from tests.support.tokens import (
    ADMIN_ID,
    ANON_KEY,
    COACH_ID,
    JWT_SECRET,
    PROJECT_REF,
    STRANGER_ID,
    SigningKey,
    admin_headers,
    bearer,
    claims,
    hs256,
    session_cookie_value,
    session_cookies,
    unsigned,
)

JOBS = "api/admin/job-queue/jobs.py"
TOGGLE = "api/admin/job-queue/toggle.py"


@pytest.fixture
def jobs_api(admin_env, serve):
    return serve(JOBS)


@pytest.fixture
def fake_auth(admin_env):
    """Supabase Auth on localhost, and the bundle configured to ask it (no JWT secret)."""
    fake = FakeSupabaseAuth(ANON_KEY)
    admin_env(
        SUPABASE_JWT_SECRET=None,
        SUPABASE_URL=fake.url,
        SUPABASE_ANON_KEY=ANON_KEY,
        SUPABASE_AUTH_TIMEOUT_SECONDS="1",
    )
    yield fake
    fake.close()


@pytest.fixture
def clock(monkeypatch):
    """The auth module's wall clock, movable: `clock.advance(61)`."""

    class Clock:
        offset = 0.0

        def advance(self, seconds: float) -> None:
            self.offset += seconds

    c = Clock()
    monkeypatch.setattr(admin_auth, "_clock", lambda: time.time() + c.offset)
    return c


def _foreign_hs256(sub, **kwargs):
    """A token Supabase Auth issued with a secret this bundle does not know."""
    return hs256(sub, secret="the-projects-own-secret-unknown-here-32b", **kwargs)


# -- the token matrix (HS256 with SUPABASE_JWT_SECRET) -----------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="none"),
        pytest.param({"Authorization": "Bearer"}, 401, id="empty-bearer"),
        pytest.param(bearer("garbage"), 401, id="garbage"),
        pytest.param(bearer("a.b.c"), 401, id="three-garbage-parts"),
        pytest.param(bearer(hs256(ADMIN_ID, secret="another-secret-of-32-bytes-or-more!!")), 401, id="wrong-signature"),
        pytest.param(bearer(unsigned(ADMIN_ID)), 401, id="alg-none"),
        pytest.param(bearer(hs256(ADMIN_ID, expires_in=-60)), 401, id="expired"),
        pytest.param(bearer(hs256(ADMIN_ID, aud="anon")), 401, id="wrong-aud"),
        pytest.param(bearer(hs256(ADMIN_ID, aud=None)), 401, id="no-aud"),
        pytest.param(bearer(hs256(ADMIN_ID, exp=None)), 401, id="no-exp"),
        pytest.param(bearer(hs256("not-a-uuid")), 401, id="sub-not-uuid"),
        pytest.param(bearer(jwt.encode(claims(ADMIN_ID), JWT_SECRET, algorithm="HS384")), 401, id="hs384"),
        pytest.param(bearer(SigningKey("ES256").sign(ADMIN_ID)), 401, id="es256-while-secret-set"),
        pytest.param(
            bearer(jwt.encode({"iss": "supabase", "role": "anon", "exp": 4102444800}, JWT_SECRET, algorithm="HS256")),
            401,
            id="anon-key",
        ),
        pytest.param(bearer(CRON_SECRET), 401, id="cron-secret-is-not-a-session"),
        pytest.param(bearer(hs256(STRANGER_ID)), 401, id="unknown-user"),
        pytest.param(bearer(hs256(COACH_ID)), 403, id="coach"),
        pytest.param(bearer(hs256(ADMIN_ID)), 200, id="admin"),
        pytest.param({"authorization": "bearer " + hs256(ADMIN_ID)}, 200, id="admin-lowercase-scheme"),
    ],
)
def test_token_matrix(jobs_api, headers, status):
    response = jobs_api.request("GET", headers=headers)
    assert response.status == status, response.json
    assert response.headers["content-type"] == "application/json"
    if status == 401:
        assert response.json["error"] == "unauthorized"
    elif status == 403:
        assert response.json["error"] == "forbidden"
    else:
        assert response.json["jobs"] == []


def test_refusals_never_echo_the_token_in_body_or_logs(jobs_api, capsys):
    token = hs256(ADMIN_ID, expires_in=-60)
    response = jobs_api.request("GET", headers=bearer(token))
    assert response.status == 401
    assert token not in response.raw.decode()
    out = capsys.readouterr().out
    assert "auth.session_refused" in out
    assert token not in out
    assert token.split(".")[2] not in out


def test_expired_session_says_so(jobs_api):
    response = jobs_api.request("GET", headers=bearer(hs256(ADMIN_ID, expires_in=-5)))
    assert response.status == 401
    assert "expired" in response.json["message"]


def test_a_demoted_admin_is_refused_at_once(jobs_api, sql):
    headers = admin_headers()
    assert jobs_api.request("GET", headers=headers).status == 200
    sql.execute("update profiles set role = 'coach' where id = %s", (ADMIN_ID,))
    assert jobs_api.request("GET", headers=headers).status == 403


def test_a_profile_without_role_is_forbidden(jobs_api, sql):
    user = uuid.uuid4()
    sql.execute("insert into profiles (id) values (%s)", (user,))
    assert jobs_api.request("GET", headers=bearer(hs256(user))).status == 403


# -- the SSR cookie -----------------------------------------------------------------------


def test_single_session_cookie_is_accepted(jobs_api):
    response = jobs_api.request("GET", headers={"Cookie": session_cookies(hs256(ADMIN_ID))})
    assert response.status == 200


@pytest.mark.parametrize("chunk_size", [50, 400, 3180])
def test_chunked_session_cookie_is_joined_in_order(jobs_api, chunk_size):
    header = session_cookies(hs256(ADMIN_ID), chunk_size=chunk_size)
    assert jobs_api.request("GET", headers={"Cookie": header}).status == 200


def test_chunks_sent_out_of_order_are_joined_by_index(jobs_api):
    parts = session_cookies(hs256(ADMIN_ID), chunk_size=60).split("; ")
    assert len(parts) > 3
    header = "; ".join(["theme=dark", *reversed(parts), "other=1"])
    assert jobs_api.request("GET", headers={"Cookie": header}).status == 200


def test_a_missing_chunk_is_refused(jobs_api):
    parts = session_cookies(hs256(ADMIN_ID), chunk_size=60).split("; ")
    header = "; ".join(parts[:1] + parts[2:])
    assert jobs_api.request("GET", headers={"Cookie": header}).status == 401


def test_legacy_url_encoded_session_cookie_is_accepted(jobs_api):
    value = quote(json.dumps({"access_token": hs256(ADMIN_ID), "refresh_token": "r"}))
    assert jobs_api.request("GET", headers={"Cookie": f"sb-{PROJECT_REF}-auth-token={value}"}).status == 200


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(f"sb-{PROJECT_REF}-auth-token=base64-!!!notbase64", id="bad-base64"),
        pytest.param(f"sb-{PROJECT_REF}-auth-token=base64-e30", id="no-access-token"),  # {}
        pytest.param(f"sb-{PROJECT_REF}-auth-token=%7Bbroken", id="bad-json"),
        pytest.param(f"sb-{PROJECT_REF}-auth-token-code-verifier=abc", id="pkce-verifier-only"),
        pytest.param("theme=dark", id="unrelated-cookie"),
    ],
)
def test_unusable_cookies_are_401(jobs_api, cookie):
    assert jobs_api.request("GET", headers={"Cookie": cookie}).status == 401


def test_cookie_of_a_coach_is_403(jobs_api):
    assert jobs_api.request("GET", headers={"Cookie": session_cookies(hs256(COACH_ID))}).status == 403


def test_bearer_takes_precedence_over_cookie(jobs_api):
    headers = {**bearer(hs256(COACH_ID)), "Cookie": session_cookies(hs256(ADMIN_ID))}
    assert jobs_api.request("GET", headers=headers).status == 403


def test_cookie_matching_supabase_url_is_chosen_among_several(admin_env, serve):
    admin_env(SUPABASE_JWT_SECRET=JWT_SECRET, SUPABASE_URL=f"https://{PROJECT_REF}.supabase.co")
    api = serve(JOBS)
    header = (
        f"sb-otherproject-auth-token={session_cookie_value(hs256(COACH_ID))}; "
        f"{session_cookies(hs256(ADMIN_ID), chunk_size=100)}"
    )
    assert api.request("GET", headers={"Cookie": header}).status == 200


def test_cookie_session_cannot_change_state_cross_site(admin_env, serve, sql):
    api = serve(TOGGLE)
    cookie = {"Cookie": session_cookies(hs256(ADMIN_ID))}
    body = {"enabled": False, "reason": "csrf"}
    for extra in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        response = api.request("POST", body=body, headers={**cookie, **extra})
        assert response.status == 403
    assert sql.execute("select processing_enabled from job_queue_settings").fetchone()["processing_enabled"] is True
    # Same origin with the cookie, or a bearer token from anywhere, may.
    same_origin = {**cookie, "Origin": f"http://127.0.0.1:{api.port}", "Sec-Fetch-Site": "same-origin"}
    assert api.request("POST", body=body, headers=same_origin).status == 200
    assert api.request("POST", body=body, headers={**admin_headers(), "Origin": "https://x.example"}).status == 200


def _toggle_with_cookie(api, **headers):
    body = {"enabled": False, "reason": "csrf"}
    return api.request("POST", body=body, headers={"Cookie": session_cookies(hs256(ADMIN_ID)), **headers}).status


def test_cookie_origin_must_match_the_scheme_too(admin_env, serve):
    api = serve(TOGGLE)
    assert _toggle_with_cookie(api, Host="admin.example", Origin="http://admin.example") == 403
    assert _toggle_with_cookie(api, Host="admin.example", Origin="https://admin.example") == 200
    # A loopback host is the dev server: plain http is its own origin there.
    assert _toggle_with_cookie(api, Host="localhost:3000", Origin="http://localhost:3000") == 200
    assert _toggle_with_cookie(api, Host="localhost:3000", Origin="http://localhost:3001") == 403


def test_client_sent_forwarded_host_is_not_trusted_by_default(admin_env, serve, sql):
    api = serve(TOGGLE)
    spoofed = {"Host": "admin.example", "X-Forwarded-Host": "evil.example", "Origin": "https://evil.example"}
    assert _toggle_with_cookie(api, **spoofed) == 403
    assert sql.execute("select processing_enabled from job_queue_settings").fetchone()["processing_enabled"] is True


def test_forwarded_host_and_scheme_count_when_configured(admin_env, serve):
    admin_env(SUPABASE_JWT_SECRET=JWT_SECRET, ADMIN_TRUST_FORWARDED_HEADERS="true")
    api = serve(TOGGLE)
    proxied = {"Host": "internal:8000", "X-Forwarded-Host": "admin.example", "X-Forwarded-Proto": "https"}
    assert _toggle_with_cookie(api, **proxied, Origin="https://admin.example") == 200
    assert _toggle_with_cookie(api, **proxied, Origin="http://admin.example") == 403
    assert _toggle_with_cookie(api, **proxied, Origin="https://internal:8000") == 403


@pytest.mark.parametrize(
    "session_json",
    [
        pytest.param("[" * 20_000 + "]" * 20_000, id="list"),
        pytest.param('{"access_token":' * 2_000 + '"x"' + "}" * 2_000, id="object"),
    ],
)
def test_deeply_nested_session_cookie_is_401(jobs_api, session_json, capsys):
    encoded = "base64-" + base64.urlsafe_b64encode(session_json.encode()).decode().rstrip("=")
    chunks = [encoded[i : i + 3000] for i in range(0, len(encoded), 3000)]
    header = "; ".join(f"sb-{PROJECT_REF}-auth-token.{i}={chunk}" for i, chunk in enumerate(chunks))
    response = jobs_api.request("GET", headers={"Cookie": header})
    assert response.status == 401
    assert response.json["error"] == "unauthorized"
    assert "RecursionError" not in capsys.readouterr().out


def test_deeply_nested_legacy_cookie_is_401(jobs_api):
    value = quote("[" * 20_000)
    assert jobs_api.request("GET", headers={"Cookie": f"sb-{PROJECT_REF}-auth-token={value}"}).status == 401


# -- configuration ---------------------------------------------------------------------


def test_nothing_configured_to_verify_sessions_is_503_not_500(admin_env, serve):
    admin_env(SUPABASE_JWT_SECRET=None, SUPABASE_URL=None)
    response = serve(JOBS).request("GET", headers=admin_headers())
    assert response.status == 503
    assert response.json["error"] == "server_misconfigured"
    assert "SUPABASE_JWT_SECRET" in response.json["message"]


def test_remote_verification_without_anon_key_is_503(fake_auth, admin_env, serve):
    admin_env(SUPABASE_ANON_KEY=None)
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    response = serve(JOBS).request("GET", headers=bearer(token))
    assert response.status == 503
    assert "SUPABASE_ANON_KEY" in response.json["message"]


# -- remote verification: GET /auth/v1/user ------------------------------------------------


def test_remote_verification_accepts_a_token_supabase_vouches_for(fake_auth, serve):
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    response = serve(JOBS).request("GET", headers=bearer(token))
    assert response.status == 200
    assert fake_auth.calls["/auth/v1/user"] == 1
    sent = fake_auth.seen_headers[-1]
    assert sent["apikey"] == ANON_KEY
    assert sent["authorization"] == f"Bearer {token}"


def test_remote_verification_refuses_what_supabase_refuses(fake_auth, serve):
    response = serve(JOBS).request("GET", headers=bearer(_foreign_hs256(ADMIN_ID)))
    assert response.status == 401
    assert fake_auth.calls["/auth/v1/user"] == 1


def test_remote_verification_then_role_check(fake_auth, serve):
    token = fake_auth.issue(_foreign_hs256(COACH_ID), COACH_ID)
    assert serve(JOBS).request("GET", headers=bearer(token)).status == 403


def test_remote_verification_with_cookie(fake_auth, serve):
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    header = session_cookies(token, ref="127", chunk_size=120)  # supabase-js names it after the host's first label
    assert serve(JOBS).request("GET", headers={"Cookie": header}).status == 200


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: unsigned(ADMIN_ID), id="alg-none"),
        pytest.param(lambda: _foreign_hs256(ADMIN_ID, expires_in=-10), id="expired"),
        pytest.param(lambda: "garbage", id="garbage"),
        pytest.param(lambda: _foreign_hs256(ADMIN_ID, exp=None), id="no-exp"),
    ],
)
def test_hopeless_tokens_are_refused_without_asking_supabase(fake_auth, serve, token):
    value = token()
    fake_auth.issue(value, ADMIN_ID)  # even a token it would vouch for
    assert serve(JOBS).request("GET", headers=bearer(value)).status == 401
    assert sum(fake_auth.calls.values()) == 0


def test_supabase_auth_hanging_is_503_within_the_timeout(fake_auth, serve):
    fake_auth.mode = "hang"
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    started = time.monotonic()
    response = serve(JOBS).request("GET", headers=bearer(token), timeout=10)
    elapsed = time.monotonic() - started
    assert response.status == 503
    assert response.json["error"] == "service_unavailable"
    assert "did not answer within 1 s" in response.json["message"]
    assert elapsed < 2.5


def test_supabase_auth_erroring_is_503(fake_auth, serve):
    fake_auth.mode = "error"
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    assert serve(JOBS).request("GET", headers=bearer(token)).status == 503


def test_supabase_auth_unreachable_is_503(fake_auth, admin_env, serve):
    fake_auth.close()
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    response = serve(JOBS).request("GET", headers=bearer(token))
    assert response.status == 503
    assert token not in response.raw.decode()


def test_remote_answer_is_cached_for_at_most_60_seconds(fake_auth, serve, clock):
    api = serve(JOBS)
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    for _ in range(3):
        assert api.request("GET", headers=bearer(token)).status == 200
    assert fake_auth.calls["/auth/v1/user"] == 1
    clock.advance(59)
    assert api.request("GET", headers=bearer(token)).status == 200
    assert fake_auth.calls["/auth/v1/user"] == 1
    clock.advance(2)
    assert api.request("GET", headers=bearer(token)).status == 200
    assert fake_auth.calls["/auth/v1/user"] == 2


def test_remote_answer_is_not_used_past_the_tokens_exp(fake_auth, serve, clock):
    api = serve(JOBS)
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID, expires_in=30), ADMIN_ID)
    assert api.request("GET", headers=bearer(token)).status == 200
    clock.advance(31)
    response = api.request("GET", headers=bearer(token))
    assert response.status == 401
    assert "expired" in response.json["message"]
    assert fake_auth.calls["/auth/v1/user"] == 1


def test_remote_refusal_is_remembered_for_10_seconds(fake_auth, serve, clock):
    api = serve(JOBS)
    token = _foreign_hs256(ADMIN_ID)
    for _ in range(3):
        assert api.request("GET", headers=bearer(token)).status == 401
    assert fake_auth.calls["/auth/v1/user"] == 1
    fake_auth.issue(token, ADMIN_ID)  # e.g. a session Supabase had not yet propagated
    clock.advance(9)
    assert api.request("GET", headers=bearer(token)).status == 401
    assert fake_auth.calls["/auth/v1/user"] == 1
    clock.advance(2)
    assert api.request("GET", headers=bearer(token)).status == 200
    assert fake_auth.calls["/auth/v1/user"] == 2


def test_remembered_refusals_are_bounded_and_hold_no_token(fake_auth, serve, monkeypatch):
    monkeypatch.setattr(admin_auth, "REMOTE_CACHE_ENTRIES", 4)
    api = serve(JOBS)
    good = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    assert api.request("GET", headers=bearer(good)).status == 200
    tokens = [_foreign_hs256(STRANGER_ID, expires_in=3600 + i) for i in range(7)]
    for token in tokens:
        assert api.request("GET", headers=bearer(token)).status == 401
    cache = admin_auth._supabase_auth
    assert len(cache._refusals) == 4
    assert len(cache._entries) == 1  # a flood of refusals does not evict a good session
    kept = repr((cache._refusals, cache._entries))
    assert not any(token in kept or token.split(".")[2] in kept for token in [good, *tokens])
    assert api.request("GET", headers=bearer(good)).status == 200
    assert fake_auth.calls["/auth/v1/user"] == 8


def test_supabase_auth_outage_is_not_remembered_as_a_refusal(fake_auth, serve):
    api = serve(JOBS)
    token = fake_auth.issue(_foreign_hs256(ADMIN_ID), ADMIN_ID)
    fake_auth.mode = "error"
    assert api.request("GET", headers=bearer(token)).status == 503
    fake_auth.mode = "ok"
    assert api.request("GET", headers=bearer(token)).status == 200


# -- asymmetric keys: the project's JWKS ----------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_asymmetric_token_is_verified_locally_against_the_jwks(fake_auth, serve, algorithm):
    key = SigningKey(algorithm)
    fake_auth.jwks = [key.jwk()]
    api = serve(JOBS)
    for _ in range(3):
        assert api.request("GET", headers=bearer(key.sign(ADMIN_ID))).status == 200
    assert fake_auth.calls["/auth/v1/.well-known/jwks.json"] == 1
    assert fake_auth.calls["/auth/v1/user"] == 0
    assert api.request("GET", headers=bearer(key.sign(COACH_ID))).status == 403


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda key: key.sign(ADMIN_ID, expires_in=-10), "expired", id="expired"),
        pytest.param(lambda key: key.sign(ADMIN_ID, aud="anon"), "invalid", id="wrong-aud"),
        pytest.param(lambda key: SigningKey("ES256", kid=key.kid).sign(ADMIN_ID), "invalid", id="forged-same-kid"),
    ],
)
def test_bad_asymmetric_tokens_are_refused_without_asking_user_endpoint(fake_auth, serve, make, message):
    key = SigningKey("ES256")
    fake_auth.jwks = [key.jwk()]
    response = serve(JOBS).request("GET", headers=bearer(make(key)))
    assert response.status == 401
    assert message in response.json["message"]
    assert fake_auth.calls["/auth/v1/user"] == 0


def test_hs256_token_cannot_borrow_a_published_key(fake_auth, serve):
    """Algorithm confusion: an HS256 token signed with the public key's bytes, naming its kid."""
    key = SigningKey("RS256")
    fake_auth.jwks = [key.jwk()]
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
        + "."
        + b64(json.dumps(claims(ADMIN_ID)).encode())
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + b64(signature)
    assert serve(JOBS).request("GET", headers=bearer(forged)).status == 401


def test_unknown_kid_falls_back_to_supabase_auth(fake_auth, serve):
    published = SigningKey("ES256")
    fake_auth.jwks = [published.jwk()]
    unpublished = SigningKey("ES256")
    api = serve(JOBS)
    assert api.request("GET", headers=bearer(unpublished.sign(ADMIN_ID))).status == 401
    token = fake_auth.issue(unpublished.sign(ADMIN_ID), ADMIN_ID)
    assert api.request("GET", headers=bearer(token)).status == 200
    assert fake_auth.calls["/auth/v1/user"] == 2


def test_legacy_project_with_empty_jwks_uses_supabase_auth(fake_auth, serve):
    key = SigningKey("ES256")
    fake_auth.jwks = []
    token = fake_auth.issue(key.sign(ADMIN_ID), ADMIN_ID)
    assert serve(JOBS).request("GET", headers=bearer(token)).status == 200
    assert fake_auth.calls["/auth/v1/user"] == 1


def test_jwks_is_cached_for_at_most_ten_minutes(fake_auth, serve, clock):
    key = SigningKey("ES256")
    fake_auth.jwks = [key.jwk()]
    api = serve(JOBS)
    assert api.request("GET", headers=bearer(key.sign(ADMIN_ID))).status == 200
    clock.advance(599)
    assert api.request("GET", headers=bearer(key.sign(ADMIN_ID))).status == 200
    assert fake_auth.calls["/auth/v1/.well-known/jwks.json"] == 1
    clock.advance(2)
    assert api.request("GET", headers=bearer(key.sign(ADMIN_ID))).status == 200
    assert fake_auth.calls["/auth/v1/.well-known/jwks.json"] == 2


def test_rotated_key_is_picked_up_without_waiting_for_the_cache(fake_auth, serve, clock):
    old, new = SigningKey("ES256"), SigningKey("ES256")
    fake_auth.jwks = [old.jwk()]
    api = serve(JOBS)
    assert api.request("GET", headers=bearer(old.sign(ADMIN_ID))).status == 200
    fake_auth.jwks = [old.jwk(), new.jwk()]
    clock.advance(31)
    assert api.request("GET", headers=bearer(new.sign(ADMIN_ID))).status == 200
    assert fake_auth.calls["/auth/v1/.well-known/jwks.json"] == 2
    assert fake_auth.calls["/auth/v1/user"] == 0


def test_jwks_endpoint_hanging_is_503(fake_auth, serve):
    fake_auth.mode = "hang"
    started = time.monotonic()
    response = serve(JOBS).request("GET", headers=bearer(SigningKey("ES256").sign(ADMIN_ID)), timeout=10)
    assert response.status == 503
    assert time.monotonic() - started < 2.5


# -- the runner secret is not an admin credential, and the worker stays lean -------------


def test_runner_secret_does_not_open_admin_controls(jobs_api):
    assert jobs_api.request("GET", headers=runner_headers()).status == 401
    assert RUNNER_SECRET  # the header above carried it


def test_worker_cold_start_does_not_import_admin_code():
    script = (
        "import sys, json\n"
        "from tests.support.api import load_api_module\n"
        "load_api_module('api/jobs/run.py')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    for module in ("jwt", "cryptography", "httpx", "lib.auth.admin", "lib.health", "lib.endpoints.admin_controls"):
        assert module not in loaded, f"api/jobs/run.py imports {module}"


# -- the profiles migration ----------------------------------------------------------------


def test_profiles_table_takes_a_bare_id_and_role_and_is_closed_to_api_roles(sql):
    user = uuid.uuid4()
    sql.execute("insert into profiles (id, role) values (%s, 'admin')", (user,))
    row = sql.execute("select * from profiles where id = %s", (user,)).fetchone()
    assert row["role"] == "admin"
    assert row["is_approved"] is False
    for column in ("game_platform_user_id", "first_name", "last_name", "email"):
        assert row[column] is None
    table = sql.execute(
        "select c.relrowsecurity, (select count(*) from pg_policies p where p.tablename = 'profiles') as policies,"
        " has_table_privilege('anon', 'public.profiles', 'select') as anon_reads,"
        " has_table_privilege('authenticated', 'public.profiles', 'select') as authenticated_reads"
        " from pg_class c where c.oid = 'public.profiles'::regclass"
    ).fetchone()
    assert table == {"relrowsecurity": True, "policies": 0, "anon_reads": False, "authenticated_reads": False}
    fks = sql.execute(
        "select count(*) as n from pg_constraint where conrelid = 'public.profiles'::regclass and contype = 'f'"
    ).fetchone()
    assert fks["n"] == 0


def test_profiles_migration_keeps_an_existing_app_table_and_its_rows(admin_conninfo):
    conninfo = create_database(admin_conninfo, prefix="jq_profiles")
    try:
        user = uuid.uuid4()
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
            ensure_supabase_compatibility(conn)
            conn.execute("create table public.profiles (id uuid primary key, role text not null, full_name text)")
            conn.execute("insert into public.profiles values (%s, 'admin', 'Ada')", (user,))
        apply_migrations(conninfo)
        with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
            row = conn.execute("select * from public.profiles").fetchone()
            assert row["id"] == user
            assert row["role"] == "admin"
            assert row["full_name"] == "Ada"
            assert "game_platform_user_id" in row
            assert "is_approved" in row
            rls = conn.execute("select relrowsecurity from pg_class where oid = 'public.profiles'::regclass")
            assert rls.fetchone()["relrowsecurity"] is False  # the app's table, the app's choice
    finally:
        drop_database(admin_conninfo, conninfo)


def test_admin_sql_functions_are_closed_to_api_roles(sql):
    row = sql.execute(
        "select has_function_privilege('anon', 'public.job_queue_health_snapshot(integer)', 'execute') as anon,"
        " has_function_privilege('authenticated', 'public.job_queue_health_snapshot(integer)', 'execute') as auth,"
        " has_function_privilege('service_role', 'public.job_queue_health_snapshot(integer)', 'execute') as service"
    ).fetchone()
    assert row == {"anon": False, "auth": False, "service": True}

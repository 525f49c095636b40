"""The vendor client against the fake Game Platform over real HTTP: auth, typed results, retries, deadlines."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from lib.game_platform.client import GamePlatformClient, RetryPolicy, parse_retry_after
from lib.game_platform.errors import (
    DeadlineReached,
    GamePlatformAuthError,
    GamePlatformBadResponse,
    GamePlatformNotConfigured,
    GamePlatformRateLimited,
    GamePlatformRejected,
    GamePlatformUnavailable,
    NotApproved,
    RemoteMissing,
)
from lib.game_platform.models import TeamCreate, UserCreate
from lib.settings import load_settings
from sandbox.game_platform import Dataset, FakeGamePlatform, FakeTeam, FakeUser, Fault, FlashCtfResult

NOW = 1_790_000_000
FAST_RETRIES = RetryPolicy(max_attempts=3, base_seconds=0.05, cap_seconds=0.2, max_retry_after_seconds=5)


@pytest.fixture
def fake():
    data = Dataset()
    alice = data.add_user(FakeUser("alice"))
    alice.odl_solves = [data.solve(NOW - 300, points=100), data.solve(NOW - 100, points=200, category="crypto")]
    data.add_user(FakeUser("coach-1", role="coach"))
    data.add_team(FakeTeam("team-1", coach_syned_user_id="coach-1"))
    data.assign("alice", "team-1")
    platform = FakeGamePlatform(data)
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture
def client(fake):
    with GamePlatformClient(fake.base_url, fake.token, timeout_seconds=2, concurrency=2, retry=FAST_RETRIES) as c:
        yield c


def test_sends_the_bearer_token_and_parses_odl_scores(fake, client):
    scores = client.get_odl_scores("alice")
    assert scores.total_challenges_solved == 2
    assert scores.total_points == 300
    assert scores.category_points == {"web": 100, "crypto": 200}
    assert [s.timestamp_unix for s in scores.challenge_solves] == [NOW - 300, NOW - 100]
    (request,) = fake.requests_for("scores/get_odl_scores")
    assert request.query == {"syned_user_id": "alice"}
    assert request.status == 200


def test_after_time_unix_is_sent_and_filters_solves_but_not_totals(fake, client):
    scores = client.get_odl_scores("alice", after_time_unix=NOW - 200)
    assert [s.timestamp_unix for s in scores.challenge_solves] == [NOW - 100]
    assert scores.total_challenges_solved == 2
    assert fake.requests_for("scores/get_odl_scores")[0].query["after_time_unix"] == str(NOW - 200)


def test_unknown_user_is_a_typed_missing_result(client):
    result = client.get_odl_scores("nobody")
    assert isinstance(result, RemoteMissing)
    assert result.identifier == "nobody"
    assert "User not found" in result.describe()
    assert isinstance(client.get_flash_ctf_progress("nobody"), RemoteMissing)
    assert isinstance(client.get_team_assignments("no-team"), RemoteMissing)


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_refused_credentials_name_the_variable(fake, token):
    if not token:
        with pytest.raises(GamePlatformNotConfigured, match="GAME_PLATFORM_API_TOKEN"):
            GamePlatformClient(fake.base_url, token)
        return
    with (
        GamePlatformClient(fake.base_url, token, retry=FAST_RETRIES) as bad,
        pytest.raises(GamePlatformAuthError, match="GAME_PLATFORM_API_TOKEN") as caught,
    ):
        bad.get_odl_scores("alice")
    assert "401" in str(caught.value)
    assert token not in str(caught.value)
    assert len(fake.requests) == 1, "bad credentials are not retried"


def test_forbidden_outside_the_scores_is_a_configuration_error_too(fake, client):
    fake.inject(Fault(status=403, detail="token lacks scope teams:read"))
    with pytest.raises(GamePlatformAuthError, match=r"403.*teams:read.*GAME_PLATFORM_API_TOKEN"):
        client.get_team_assignments("team-1")


@pytest.mark.parametrize("path", ["scores/get_odl_scores", "scores/get_flash_ctf_progress"])
def test_forbidden_scores_are_a_typed_not_approved_result(fake, client, path):
    fake.dataset.users["alice"].status = "pending_approval"
    call = client.get_odl_scores if path.endswith("odl_scores") else client.get_flash_ctf_progress
    answer = call("alice")
    assert isinstance(answer, NotApproved)
    assert answer.identifier == "alice"
    assert "not approved" in answer.describe()
    assert "pending_approval" in answer.describe()
    assert [r.status for r in fake.requests_for(path)] == [403], "a refusal is not retried"


def test_an_unknown_token_is_still_an_auth_error_on_the_scores(fake):
    with GamePlatformClient(fake.base_url, "wrong", retry=FAST_RETRIES) as wrong, pytest.raises(GamePlatformAuthError):
        wrong.get_odl_scores("alice")


def test_fields_the_vendor_leaves_out_do_not_fail_the_answer(fake, client):
    alice = fake.dataset.users["alice"]
    alice.omit = frozenset(
        {"challenge_solves", "last_accessed_unix_timestamp", "category_points", "metactf_user_id", "syned_user_id"}
    )
    scores = client.get_odl_scores("alice")
    assert scores.challenge_solves == []
    assert scores.last_accessed_unix_timestamp is None
    assert scores.total_points == 300

    alice.omit = frozenset(
        {"max_points_possible", "rank", "challenge_retired", "nist_nice_work_roles", "points_earned"}
    )
    alice.flash_ctfs = [FlashCtfResult("Flash CTF: Bits", NOW - 50, [fake.dataset.solve(NOW - 40)])]
    (item,) = client.get_flash_ctf_progress("alice").flash_ctfs
    assert (item.max_points_possible, item.rank, item.points_earned) == (None, None, None)
    assert item.solved == 1
    assert item.challenge_solves[0].challenge_retired is None
    assert item.challenge_solves[0].nist_nice_work_roles == []

    alice.omit = frozenset({"challenge_solves", "challenges_solved"})
    (item,) = client.get_flash_ctf_progress("alice").flash_ctfs
    assert item.solved == 0


def test_items_keep_the_vendors_object_as_received(fake, client):
    alice = fake.dataset.users["alice"]
    alice.odl_solves[0].nist_roles = ("Cyber Defense Analyst",)
    alice.flash_ctfs = [FlashCtfResult("Flash CTF: Bits", NOW - 50, [fake.dataset.solve(NOW - 40)], max_points=700)]
    solve = client.get_odl_scores("alice").challenge_solves[0]
    assert solve.raw_payload == alice.odl_solves[0].to_json()
    assert solve.raw_payload["nist_nice_work_roles"] == ["Cyber Defense Analyst"]
    (item,) = client.get_flash_ctf_progress("alice").flash_ctfs
    assert item.raw_payload == alice.flash_ctfs[0].to_json()
    assert item.max_points_possible == 700
    assert item.event_id == f"Flash CTF: Bits:{NOW - 50}"


def test_user_answers_carry_the_last_login(fake, client):
    fake.dataset.users["alice"].last_login_unix = NOW - 7
    assert client.get_user("alice").last_login_unix_timestamp == NOW - 7
    fake.dataset.users["alice"].last_login_unix = None
    assert client.get_user("alice").last_login_unix_timestamp is None


def test_delete_assignment_takes_the_user_off_their_team(fake, client):
    assert client.delete_assignment("alice") is None
    assert fake.requests_for("users/delete_assignment")[0].body == {"syned_user_id": "alice"}
    assert "alice" not in fake.dataset.assignments
    assert isinstance(client.delete_assignment("alice"), RemoteMissing), "gone already: a 404, not an error"


def test_422_surfaces_the_vendors_detail(fake, client):
    with pytest.raises(GamePlatformRejected, match=r"422.*after_time_unix: Input should be a valid integer") as caught:
        client._call(
            "GET",
            "scores/get_odl_scores",
            type(client.get_odl_scores("alice")),
            params={"syned_user_id": "alice", "after_time_unix": "yesterday"},
        )
    assert caught.value.status == 422
    assert len(fake.requests_for("scores/get_odl_scores")) == 2, "a 422 is not retried"


def test_create_user_validation_error_lists_each_field(fake, client):
    fake.inject(
        Fault(
            status=422,
            path="users",
            detail=[
                {"loc": ["body", "email"], "msg": "value is not a valid email address", "type": "value_error"},
                {"loc": ["body", "role"], "msg": "Input should be 'coach' or 'user'", "type": "enum"},
            ],
        )
    )
    user = UserCreate(first_name="Bo", last_name="Li", email="bo@example.test", role="user", syned_user_id="bo")
    with pytest.raises(GamePlatformRejected) as caught:
        client.create_user(user)
    assert "body.email: value is not a valid email address" in str(caught.value)
    assert "body.role: Input should be 'coach' or 'user'" in str(caught.value)


def test_server_error_then_success_is_retried(fake, client):
    fake.inject(Fault(status=500, path="scores/get_odl_scores", times=2))
    scores = client.get_odl_scores("alice")
    assert scores.total_points == 300
    assert [r.status for r in fake.requests_for("scores/get_odl_scores")] == [500, 500, 200]
    assert client.calls == 3


def test_persistent_server_error_gives_up_after_the_policy_attempts(fake, client):
    fake.inject(Fault(status=503, detail="maintenance"))
    with pytest.raises(GamePlatformUnavailable, match=r"HTTP 503: maintenance") as caught:
        client.get_odl_scores("alice")
    assert caught.value.status == 503
    assert len(fake.requests) == FAST_RETRIES.max_attempts


def test_dropped_connection_is_retried(fake, client):
    fake.inject(Fault(disconnect=True, times=1))
    assert client.get_odl_scores("alice").total_points == 300
    assert [r.status for r in fake.requests] == [0, 200]


def test_429_waits_for_retry_after_seconds(fake, client):
    fake.inject(Fault(status=429, retry_after="1", times=1))
    started = time.monotonic()
    assert client.get_odl_scores("alice").total_points == 300
    requests = fake.requests_for("scores/get_odl_scores")
    assert [r.status for r in requests] == [429, 200]
    assert requests[1].at - requests[0].at >= 0.95
    assert time.monotonic() - started < 3


def test_429_honours_an_http_date_retry_after(fake, client):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    fake.inject(Fault(status=429, retry_after=when, times=1))
    assert client.get_odl_scores("alice").total_points == 300
    first, second = fake.requests_for("scores/get_odl_scores")
    assert second.at - first.at >= 0.9  # an HTTP date has whole seconds: at least one of the two is waited


def test_429_longer_than_a_job_can_wait_raises_with_the_delay(fake, client):
    fake.inject(Fault(status=429, retry_after="120"))
    with pytest.raises(GamePlatformRateLimited) as caught:
        client.get_odl_scores("alice")
    assert caught.value.retry_after == 120
    assert len(fake.requests) == 1


def test_post_that_may_have_reached_the_vendor_is_not_retried(fake, client):
    fake.inject(Fault(status=500, path="teams", times=1))
    team = TeamCreate(
        syned_coach_user_id="coach-1",
        syned_team_id="team-2",
        team_name="Blue",
        affiliation="North High",
        division="high_school",
    )
    with pytest.raises(GamePlatformUnavailable):
        client.create_team(team)
    assert len(fake.requests_for("teams")) == 1
    created = client.create_team(team)
    assert created.syned_team_id == "team-2"
    assert created.metactf_coach_id == "coach-1"


def test_assign_team_and_list_assignments(fake, client):
    user = UserCreate(first_name="Bo", last_name="Li", email="bo@example.test", role="user", syned_user_id="bo")
    assert client.create_user(user).metactf_user_status == "user_created"
    assert client.assign_team("team-1", "bo").syned_user_id == "bo"
    listed = client.get_team_assignments("team-1")
    assert {a.syned_user_id for a in listed.assignments} == {"alice", "bo"}
    assert listed.total_count == 2
    assert isinstance(client.assign_team("team-1", "ghost"), RemoteMissing)
    assert fake.requests_for("users/assign_team")[0].body == {"syned_team_id": "team-1", "syned_user_id": "bo"}


def test_slow_response_times_out_and_is_retried(fake):
    fake.inject(Fault(delay=3.0, times=1))
    with GamePlatformClient(fake.base_url, fake.token, timeout_seconds=0.3, retry=FAST_RETRIES) as quick:
        started = time.monotonic()
        assert quick.get_odl_scores("alice").total_points == 300
    assert time.monotonic() - started < 2.5, "the slow answer was not waited for"


def test_slow_responses_that_never_recover_are_unavailable(fake):
    fake.inject(Fault(delay=0.5))
    with (
        GamePlatformClient(fake.base_url, fake.token, timeout_seconds=0.2, retry=FAST_RETRIES) as quick,
        pytest.raises(GamePlatformUnavailable, match="ReadTimeout"),
    ):
        quick.get_odl_scores("alice")


def test_no_call_outlives_the_deadline(fake):
    fake.inject(Fault(delay=2.0))
    deadline = time.monotonic() + 0.4
    with GamePlatformClient(fake.base_url, fake.token, timeout_seconds=5, deadline=deadline) as bounded:
        with pytest.raises(DeadlineReached):
            bounded.get_odl_scores("alice")
        assert time.monotonic() < deadline + 1.0, "the 2 s answer was not waited for"
        with pytest.raises(DeadlineReached):
            bounded.get_odl_scores("alice")


def test_a_retry_that_would_overrun_the_deadline_is_not_waited_for(fake):
    fake.inject(Fault(status=429, retry_after="3"))
    deadline = time.monotonic() + 1.0
    with GamePlatformClient(fake.base_url, fake.token, deadline=deadline) as bounded, pytest.raises(DeadlineReached):
        bounded.get_odl_scores("alice")
    assert time.monotonic() < deadline


def test_a_body_that_breaks_the_schema_is_a_bad_response(fake, client):
    # The totals are what the sweep writes: without them the answer cannot be trusted.
    fake.dataset.users["alice"].omit = frozenset({"total_points"})
    with pytest.raises(GamePlatformBadResponse, match="total_points"):
        client.get_odl_scores("alice")
    fake.dataset.users["alice"].omit = frozenset({"challenge_solve_id"})
    with pytest.raises(GamePlatformBadResponse, match="challenge_solve_id"):
        client.get_odl_scores("alice")


def test_from_settings_uses_the_game_platform_variables(fake):
    settings = load_settings(
        {
            "GAME_PLATFORM_API_BASE_URL": fake.base_url,
            "GAME_PLATFORM_API_TOKEN": fake.token,
            "GAME_PLATFORM_TIMEOUT_SECONDS": "4",
            "GAME_PLATFORM_CONCURRENCY": "3",
        }
    )
    with GamePlatformClient.from_settings(settings) as configured:
        assert configured.timeout_seconds == 4
        assert configured.get_user("alice").syned_user_id == "alice"


def test_settings_default_to_the_vendors_production_url():
    settings = load_settings({})
    assert settings.game_platform_api_base_url == "https://api.metactf.com/integrations/syned/v1"
    assert settings.game_platform_concurrency == 8
    with pytest.raises(GamePlatformNotConfigured, match="GAME_PLATFORM_API_TOKEN is not set"):
        GamePlatformClient.from_settings(settings)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header, expected):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


def test_backoff_is_capped_and_grows():
    policy = RetryPolicy(base_seconds=0.5, cap_seconds=4)
    assert all(0.25 <= policy.backoff(1) <= 0.5 for _ in range(50))
    assert all(1.0 <= policy.backoff(3) <= 2.0 for _ in range(50))
    assert all(2.0 <= policy.backoff(30) <= 4.0 for _ in range(50))


def test_one_client_reuses_its_connections(fake, client):
    for _ in range(5):
        client.get_odl_scores("alice")
    # Keep-alive: five sequential calls over one pooled connection.
    assert client.calls == 5
    pool = client._http._transport._pool  # httpx's connection pool
    assert len(pool.connections) == 1

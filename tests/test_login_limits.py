"""Sign-ins are throttled per username and per address on every login path, password
checks are bounded, and API rate limits count each user apart behind one address
(bogus credentials counted per address before any database read)."""

from __future__ import annotations

import dataclasses
import secrets
import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from missioncontrol import logins, ratelimit
from missioncontrol.config import Rate, RateLimitsConfig
from tests.conftest import access_token, api_token

pytestmark = pytest.mark.django_db

GRAPHQL = {"query": "{ threads { totalCount } }"}


@pytest.fixture(autouse=True)
def _window_starts_with_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed window begins as the test does, so its hits never straddle two windows."""
    wall = time.time() % 60 - 0.5
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: time.time() - wall))


def limits(settings: Any, **changes: Any) -> None:
    settings.RATE_LIMITS = dataclasses.replace(RateLimitsConfig(), **changes)


def obtain(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    body = {"username": username, "password": password}
    return client.post("/api/auth/token/", body, "application/json", REMOTE_ADDR=address)


def test_the_token_endpoint_refuses_a_username_past_its_limit_even_with_the_right_password(
    settings: Any, viewer: User
) -> None:
    limits(settings, login=Rate(3, 60))
    client = Client()
    assert [obtain(client, "victor", "wrong").status_code for _ in range(3)] == [401, 401, 401]
    refused = obtain(client, "victor", "victor-pw-1234")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert error["limit"] == "rate_limits.login" and "Too many sign-in attempts" in error["reason"]
    assert obtain(client, "VICTOR", "victor-pw-1234").status_code == 429  # one bucket, whatever the case
    assert obtain(client, "olga", "wrong", address="10.0.0.1").status_code == 401  # other users unaffected


def test_the_token_endpoint_refuses_an_address_past_its_limit(settings: Any, viewer: User) -> None:
    limits(settings, login_address=Rate(3, 60))
    client = Client()
    assert [obtain(client, f"guess{i}", "x").status_code for i in range(3)] == [401, 401, 401]
    refused = obtain(client, "victor", "victor-pw-1234")
    assert refused.status_code == 429 and refused.json()["error"]["limit"] == "rate_limits.login_address"
    assert obtain(client, "victor", "victor-pw-1234", address="10.0.0.2").status_code == 200


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_sign_in_page_past_the_limit_says_so_with_429(settings: Any, viewer: User, path: str) -> None:
    limits(settings, login=Rate(2, 60))
    client = Client()
    for _ in range(2):
        page = client.post(path, {"username": "victor", "password": "wrong"})
        assert page.status_code == 200 and "Too many" not in page.content.decode()
    page = client.post(path, {"username": "victor", "password": "victor-pw-1234"})
    assert page.status_code == 429
    assert 1 <= int(page["Retry-After"]) <= 60
    text = page.content.decode()
    assert "Too many sign-in attempts for this username" in text and "Try again in" in text
    assert "_auth_user_id" not in client.session  # not signed in


def test_a_sign_in_within_the_limits_still_works(settings: Any, viewer: User) -> None:
    limits(settings, login=Rate(3, 60))
    client = Client()
    answer = client.post("/accounts/login/", {"username": "victor", "password": "victor-pw-1234"})
    assert answer.status_code == 302
    assert obtain(Client(), "victor", "victor-pw-1234").status_code == 200


def test_password_checks_past_the_concurrency_bound_are_refused_at_once(settings: Any, viewer: User) -> None:
    settings.LOGIN_CONCURRENCY = 1
    settings.LOGIN_SLOT_WAIT = 0.05
    slots = logins._semaphore()
    assert slots.acquire(timeout=1)  # another sign-in is being checked
    try:
        started = time.monotonic()
        refused = obtain(Client(), "victor", "victor-pw-1234")
        assert time.monotonic() - started < 1
        assert refused.status_code == 503 and refused["Retry-After"] == "1"
        assert refused.json()["error"]["limit"] == "login_concurrency"
        page = Client().post("/accounts/login/", {"username": "victor", "password": "victor-pw-1234"})
        assert page.status_code == 503 and "Too many sign-ins are being checked" in page.content.decode()
    finally:
        slots.release()
    assert obtain(Client(), "victor", "victor-pw-1234").status_code == 200


def test_users_behind_one_address_have_their_own_graphql_limit(
    settings: Any, viewer: User, operator: User
) -> None:
    limits(settings, api=Rate(3, 60))
    client = Client()

    def ask(user: User) -> int:
        auth = f"Bearer {access_token(user)}"
        answer = client.post(
            "/graphql", GRAPHQL, "application/json", HTTP_AUTHORIZATION=auth, REMOTE_ADDR="10.9.9.9"
        )
        return answer.status_code

    assert [ask(viewer) for _ in range(4)] == [200, 200, 200, 429]
    assert ask(operator) == 200


def test_an_api_token_counts_against_its_user_once_known(settings: Any, viewer: User, operator: User) -> None:
    limits(settings, api=Rate(4, 60))
    client = Client()
    victor, olga = api_token(viewer, "alpha"), api_token(operator, "alpha")

    def ask(raw: str) -> int:
        answer = client.post(
            "/graphql",
            GRAPHQL,
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            REMOTE_ADDR="10.9.9.9",
        )
        return answer.status_code

    # The first request of each token is counted against the address (not known yet), the
    # rest against its user.
    assert [ask(victor) for _ in range(6)] == [200, 200, 200, 200, 200, 429]
    assert ask(olga) == 200


@pytest.mark.parametrize("path", ["/graphql", "/api/threads"])
def test_bogus_credentials_are_limited_per_address_before_any_lookup(
    settings: Any, path: str, django_assert_max_num_queries: Any
) -> None:
    limits(settings, api=Rate(3, 60))
    client = Client()

    def ask(raw: str) -> Any:
        if path == "/graphql":
            return client.post(
                path, GRAPHQL, "application/json", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="10.6.6.6"
            )
        return client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="10.6.6.6")

    for _ in range(3):
        assert ask("mct_" + secrets.token_urlsafe(32)).status_code == 401
    for bogus in ("mct_" + secrets.token_urlsafe(32), "eyJhbGciOiJIUzI1NiJ9.e30.forged"):
        with django_assert_max_num_queries(0):
            refused = ask(bogus)
        assert refused.status_code == 429 and refused["Retry-After"]
    other = client.get("/api/threads", HTTP_AUTHORIZATION="Bearer mct_x", REMOTE_ADDR="10.6.6.7")
    assert other.status_code == 401  # another address is not held back


@pytest.mark.django_db(transaction=True)
async def test_bogus_websocket_tokens_are_limited_per_address_before_any_lookup(settings: Any) -> None:
    from tests.conftest import Socket

    limits(settings, api=Rate(2, 60))
    reasons = []
    for _ in range(3):
        socket = Socket(token="mct_" + secrets.token_urlsafe(32), client=("10.5.5.5", 4000))
        connected, _ = await socket.comm.connect()
        assert connected
        reasons.append((await socket.recv())["payload"]["reason"])
        await socket.comm.disconnect()
    assert reasons[:2] == ["invalid, expired or revoked token"] * 2
    assert "more than 2 per 60 s for address 10.5.5.5" in reasons[2]

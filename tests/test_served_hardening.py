"""The hardening as a visitor meets it on a real daphne (the embedded default, a fresh
data directory, the production password hasher): no debug page, the product's 404,
JSON 404s for the API, no way out of /static/, a Content-Security-Policy, sign-ins
throttled and their password checks bounded, and a WebSocket flood closed with a code
the client really receives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import websockets

from tests.processes import Server, jwt_for, superuser_server

pytestmark = pytest.mark.slow

PASSWORD = "served-pw-7315"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    server, env = superuser_server(
        tmp_path_factory.mktemp("served-data"),
        "ops",
        PASSWORD,
        MC_RATE_LIMIT_LOGIN="3/min",
        MC_RATE_LIMIT_WS_FRAMES="5/min",
        MC_LOGIN_CONCURRENCY="1",
        MC_LOGIN_SLOT_WAIT="0.05",
    )
    try:
        server.wait_healthy()
        yield server, env
    finally:
        server.stop()


@pytest.fixture
def web(served: tuple[Server, dict[str, str]]) -> Server:
    return served[0]


def test_an_unknown_page_is_the_products_404_not_a_debug_page(web: Server) -> None:
    page = httpx.get(f"{web.url}/no/such/page", follow_redirects=False)
    assert page.status_code == 404
    assert "There is nothing at" in page.text
    assert "URLconf" not in page.text and "api/ingest" not in page.text  # no URL patterns listed
    assert "default-src 'self'" in page.headers["content-security-policy"]
    api = httpx.get(f"{web.url}/api/no/such/thing")
    assert api.status_code == 404 and api.json() == {"detail": "Not found."}


def test_no_path_climbs_out_of_static(web: Server) -> None:
    assert httpx.get(f"{web.url}/static/mc/shell.js").status_code == 200
    for path in ("/static/..%2f..%2fmanage.py", "/static/..%2fmissioncontrol%2fsettings.py"):
        answer = httpx.get(web.url + path)
        assert answer.status_code == 404, (path, answer.status_code)


def obtain(web: Server, password: str) -> httpx.Response:
    return httpx.post(
        f"{web.url}/api/auth/token/", json={"username": "ops", "password": password}, timeout=30
    )


def test_sign_ins_are_throttled_and_the_page_says_why(web: Server) -> None:
    assert [obtain(web, "wrong").status_code for _ in range(3)] == [401, 401, 401]
    refused = obtain(web, PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["limit"] == "rate_limits.login"
    with httpx.Client(base_url=web.url) as browser:
        form = browser.get("/accounts/login/")
        token = form.cookies["csrftoken"]
        page = browser.post(
            "/accounts/login/", data={"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": token}
        )
    assert page.status_code == 429 and "Too many sign-in attempts" in page.text


def test_password_checks_past_the_bound_are_refused_at_once(web: Server) -> None:
    # One check at a time (MC_LOGIN_CONCURRENCY=1), each PBKDF2: of six at once, some
    # are refused within the slot wait instead of queueing; none is a 500. Each attempt
    # names another user, so the per-username limit stays out of the way.
    def attempt(i: int) -> tuple[int, float]:
        body = {"username": f"nobody{i}", "password": "x"}
        answer = httpx.post(f"{web.url}/api/auth/token/", json=body, timeout=30)
        return answer.status_code, answer.elapsed.total_seconds()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(attempt, range(6)))
    codes = [code for code, _ in results]
    assert set(codes) <= {401, 503, 429}, codes
    assert 503 in codes and 401 in codes, codes
    assert all(seconds < 2 for code, seconds in results if code == 503), results


def test_a_websocket_flood_is_closed_with_4008_as_the_client_sees_it(
    served: tuple[Server, dict[str, str]],
) -> None:
    web, env = served
    token = jwt_for(env, "ops")

    async def flood() -> Any:
        async with websockets.connect(f"ws://127.0.0.1:{web.port}/ws/?token={token}") as ws:
            for _ in range(20):
                await ws.send(json.dumps({"type": "ping"}))
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=5)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    assert asyncio.run(flood()) == 4008

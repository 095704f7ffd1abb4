"""The record as a new user meets it: `manage.py serve` on a fresh data directory with the demo
agent running, read through the API and in Chromium.

- Outcomes are true: the demo round's failing tool call is a failed step on the agent's
  thread (whose own "complete" stays), its /mcp call is a thread that ended in error, the
  "with failures" filter finds both, and the inspector shows the call failed, not waiting.
- Calls belong to the server they went to: the calls the agent routes through /mcp are
  threads on `time` (its page lists them), children of the agent's threads, grouped in
  one /mcp session with a page of its own; a long timeline is read a page at a time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import event
from tests.processes import ROOT, Server, clean_env, create_key, create_token, free_port, post_events

pytest.importorskip("playwright.sync_api")
from tests.test_pages_browser import browser  # noqa: E402, F401  (Debian's Chromium, one per module)

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


class Served:
    def __init__(self, server: Server, token: str, key: str) -> None:
        self.server, self.url, self.key = server, server.url, key
        self.auth = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, headers=self.auth, timeout=10)
        assert response.status_code == 200, (path, response.text)
        return response.json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("served")
    env = clean_env(MC_DATA_DIR=str(tmp / "data"), MC_DEMO_INTERVAL="1", MC_TEST_PASSWORD=PASSWORD)
    for command in (
        ["migrate", "--noinput"],
        ["seed_demo", "--if-empty", "--no-round"],
        ["create_user", "ops", "--role", "admin", "--password-from-env", "MC_TEST_PASSWORD"],
    ):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=120)
    token, key = create_token(env), create_key(env, "pusher", "srv-pusher")
    port = free_port()
    server = Server([sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp / "serve.log")
    try:
        server.wait_healthy()
        here = Served(server, token, key)
        deadline = time.monotonic() + 90
        # The first live round (round 0) tries an invalid time zone: wait for it to end.
        while not here.get("/api/threads", mcp="demo-agent", root="true", status="complete")["results"]:
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.5)
        yield here
    finally:
        server.stop()


@pytest.fixture
def page(served: Served, browser: Any) -> Iterator[Any]:  # noqa: F811  (the imported fixture)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(15_000)
    tab.goto(f"{served.url}/accounts/login/?next=/")
    tab.fill("input[name=username]", "ops")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{served.url}/")
    yield tab
    context.close()
    assert errors == [], errors


def test_a_failed_call_is_a_failure_everywhere_and_the_agents_own_status_stays(
    served: Served, page: Any
) -> None:
    (round_thread,) = served.get("/api/threads", mcp="demo-agent", root="true", status="complete")["results"][
        -1:
    ]
    # The agent finished its round ("complete"); one of its tool calls failed on the way.
    assert round_thread["status"] == "complete" and round_thread["error_count"] >= 1
    failing = served.get("/api/threads", mcp="demo-agent", with_failures="true")["results"]
    assert round_thread["id"] in [t["id"] for t in failing]
    # The call it routed through /mcp is a thread on `time` that ended in error, its child.
    routed = served.get("/api/threads", mcp="time", with_failures="true", parent=round_thread["id"])
    assert [(t["status"], t["error_count"]) for t in routed["results"]] == [("error", 1)]

    page.goto(f"{served.url}/threads/{round_thread['id']}", wait_until="networkidle")
    # What each call's summary line says became of it.
    outcomes = page.locator("#tool-calls details.tool-call summary .status").all_inner_texts()
    assert "error" in outcomes and "running" not in outcomes, outcomes
    failed = page.locator("#tool-calls details.tool-call summary", has_text="error").first.inner_text()
    assert "get_current_time" in failed and "waiting for the result" not in failed
    assert "failed" in page.locator("#thread-errors").inner_text()
    listing = page.goto(f"{served.url}/threads?with_failures=true", wait_until="networkidle")
    assert listing is not None and round_thread["id"] in page.content()


def test_a_long_timeline_opens_on_its_first_page_and_loads_the_rest_on_demand(
    served: Served, page: Any
) -> None:
    steps = [
        event("thread.step", n, thread_id="T-long", sequence=n, step_type="script", description=f"step {n}")
        for n in range(1, 251)
    ]
    post_events(served.url, served.key, [event("thread.started", 0, thread_id="T-long"), *steps])
    page.goto(f"{served.url}/threads/T-long", wait_until="networkidle")
    assert page.locator("#waterfall .wf-row").count() == 200
    assert page.locator("#step-count").inner_text() == "200 of 250 steps"
    page.click("#more-steps")
    page.wait_for_function("() => document.querySelectorAll('#waterfall .wf-row').length === 250")
    assert page.locator("#step-count").inner_text() == "250 steps"
    assert page.locator("#more-steps").is_hidden()


def test_routed_calls_are_threads_of_the_server_that_answered_in_one_mcp_session(
    served: Served, page: Any
) -> None:
    calls = served.get("/api/threads", mcp="time")["results"]
    assert len(calls) >= 3 and all(t["status"] in ("complete", "error") for t in calls)
    parents, deadline = {t["parent_id"] for t in calls}, time.monotonic() + 15
    # Each a child of the agent's thread (which the SDK may report a moment after the call).
    while not parents <= {
        t["id"] for t in served.get("/api/threads", mcp="demo-agent", limit=500)["results"]
    }:
        assert time.monotonic() < deadline, parents
        time.sleep(0.3)
    assert not served.get("/api/threads", mcp="mission-control")["results"]
    (session,) = {t["session_id"] for t in calls}
    detail = served.get(f"/api/sessions/{session}")
    assert detail["via"] == "/mcp" and detail["ended_at"] is None and detail["thread_count"] >= 3

    page.goto(f"{served.url}/servers/time", wait_until="networkidle")
    text = page.content()
    assert "No thread on this server yet" not in text and calls[0]["id"] in text
    assert page.locator("#calls tbody tr").count() >= 3
    page.goto(f"{served.url}/threads/{calls[0]['id']}", wait_until="networkidle")
    page.click("#thread-session")
    page.wait_for_url(f"{served.url}/sessions/{session}")
    assert calls[0]["id"] in page.content()

"""static/mc/live.js in Chromium against `manage.py serve` behind a proxy that drops the
connection: a query or a command pending across the drop is sent again once the socket is
back and answered, not rejected with "connection lost"; the re-sent command runs once."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.processes import Server, clean_env, create_token, free_port, manage, register

pytest.importorskip("playwright.sync_api")
from tests.test_live_js import Proxy  # noqa: E402  (a TCP proxy whose connections can be cut)
from tests.test_pages_browser import browser  # noqa: E402, F401  (Debian's Chromium, one per module)

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


class Served:
    def __init__(self, server: Server, proxy: Proxy, admin: str) -> None:
        self.server, self.proxy = server, proxy
        self.page_url = f"http://127.0.0.1:{proxy.port}"
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.down = False

    def reopen(self) -> None:
        self.proxy.open()
        self.down = False

    def threads(self, mcp: str) -> set[str]:
        answer = httpx.get(
            f"{self.server.url}/api/threads", params={"mcp": mcp}, headers=self.admin, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return {thread["id"] for thread in answer.json()["results"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("live-requests")
    env = clean_env(MC_DATA_DIR=str(tmp / "data"), MC_DEMO="0", MC_TEST_PASSWORD=PASSWORD)
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "create_user", "ops", "--role", "operator", "--password-from-env", "MC_TEST_PASSWORD")
    admin = create_token(env, "root", "admin")
    port = free_port()
    server = Server([sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp / "serve.log")
    proxy = Proxy(port)
    try:
        server.wait_healthy()
        register(
            server.url,
            admin,
            {"id": "leaky", "command": sys.executable, "args": ["-m", "tests.servers.leaky"]},
        )
        proxy.open()
        yield Served(server, proxy, admin)
    finally:
        proxy.loop.call_soon_threadsafe(proxy.loop.stop)
        server.stop()


@pytest.fixture
def page(served: Served, browser: Any) -> Iterator[Any]:  # noqa: F811  (the imported fixture)
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.goto(f"{served.page_url}/accounts/login/?next=/")
    tab.fill("input[name=username]", "ops")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{served.page_url}/")
    until(tab, "window.MC && MC.live && MC.live.state === 'live'")
    yield tab
    context.close()
    if served.down:  # a test that failed while the connection was cut
        served.reopen()


def until(page: Any, expression: str, timeout: float = 20) -> None:
    """Wait for `expression` to be true in the page (polled: the page's CSP forbids the
    eval behind Playwright's wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"not true after {timeout} s: {expression}"
        time.sleep(0.1)


def drop(served: Served, page: Any) -> None:
    served.proxy.cut()
    served.down = True
    until(page, "MC.live.state === 'down'")


def test_a_query_made_while_the_connection_is_down_is_answered_once_it_is_back(
    served: Served, page: Any
) -> None:
    drop(served, page)
    page.evaluate(
        """() => { window.answer = null;
        MC.live.request("query", "mcp:leaky", {}).then(
          (payload) => (window.answer = { ok: payload }), (error) => (window.answer = { error: error }));
        }"""
    )
    time.sleep(1)  # still down: the query waits rather than failing
    assert page.evaluate("window.answer") is None
    served.reopen()
    until(page, "window.answer !== null")
    answer = page.evaluate("window.answer")
    assert "ok" in answer, answer
    [state] = answer["ok"]["events"]
    assert state["type"] == "mcp.state" and state["mcp"]["id"] == "leaky", state


def test_a_command_under_way_when_the_connection_drops_is_answered_and_runs_once(
    served: Served, page: Any
) -> None:
    before = served.threads("leaky")
    page.evaluate(
        """() => { window.answer = null;
        const pause = { command: "call_tool", tool: "pause", arguments: { seconds: 2 } };
        MC.live.request("command", "mcp:leaky", pause).then(
          (payload) => (window.answer = { ok: payload }), (error) => (window.answer = { error: error }));
        }"""
    )
    time.sleep(0.7)  # the call is under way on the server
    drop(served, page)
    time.sleep(0.5)
    served.reopen()
    until(page, "window.answer !== null", timeout=30)
    answer = page.evaluate("window.answer")
    assert "ok" in answer, answer
    thread_id = answer["ok"]["thread_id"]
    assert answer["ok"]["tool"] == "pause" and thread_id
    deadline = time.monotonic() + 15
    while thread_id not in served.threads("leaky") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # a second run, if there were one, would be recorded by now
    assert served.threads("leaky") - before == {thread_id}

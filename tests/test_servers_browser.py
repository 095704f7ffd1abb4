"""Managing servers in a real browser: someone who may register servers (as the REST API
says: admins) adds a stdio server, tests its connection and sees its tools, sees a failing
server's error in words, and reads the server's usage; a viewer and an operator see no
"Add server" button. Chromium, against a served web process with its gateway inside.

Screenshots land in /tmp/mc-servers-shots/.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from tests.conftest import make_user
from tests.processes import Server
from tests.test_pages_browser import PASSWORD, WAIT_MS, Visit, browser, web  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/mc-servers-shots")
CLOCK_ARGS = "-m\nmcp_server_time\n--local-timezone=UTC"


@pytest.fixture
def people(db: None, settings: Any) -> dict[str, Any]:
    # The web process checks passwords with Django's default hashers, not the tests' MD5.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    found = {}
    for name, role in (("ada", "admin"), ("olga", "operator"), ("victor", "viewer")):
        user = make_user(name, role, "alpha")
        user.set_password(PASSWORD)
        user.save()
        found[role] = user
    assert Group.objects.filter(name="admin").exists()
    return found


@pytest.fixture
def tabs(web: Server, browser: Any, people: dict[str, Any]) -> Iterator[Any]:  # noqa: F811
    contexts: list[Any] = []
    visits: list[Visit] = []

    def open_as(username: str) -> Visit:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme="dark")
        contexts.append(context)
        tab = Visit(web, context.new_page())
        visits.append(tab)
        tab.page.goto(f"{web.url}/accounts/login/?next=/servers")
        tab.page.fill("input[name=username]", username)
        tab.page.fill("input[name=password]", PASSWORD)
        tab.page.click("button[type=submit]")
        tab.page.wait_for_url(f"{web.url}/servers")
        return tab

    yield open_as
    for context in contexts:
        context.close()
    for tab in visits:
        assert tab.errors == [], tab.errors


def shot(tab: Visit, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    tab.page.evaluate("() => window.scrollTo(0, 0)")  # the sticky header stays on top
    tab.page.screenshot(path=str(path), full_page=True)
    return path


def test_an_admin_adds_a_server_tests_it_and_reads_its_usage(tabs: Any) -> None:
    tab = tabs("ada")
    page = tab.page
    page.click("#add-server")
    page.wait_for_url("**/servers/new")
    page.fill("input[name=id]", "clock")
    page.select_option("select[name=transport]", "stdio")
    assert page.is_hidden("input[name=url]")  # the HTTP fields are for HTTP servers
    page.fill("input[name=command]", sys.executable)
    page.fill("textarea[name=args]", CLOCK_ARGS)
    page.fill("textarea[name=env]", "CLOCK_TOKEN=not-to-be-shown")
    page.click("#test-connection")
    page.wait_for_selector("#test-ok", timeout=30_000)
    tools = page.inner_text("#test-tools")
    assert "get_current_time" in tools and "convert_time" in tools
    shot(tab, "add-server-tested")

    page.click("#save-server")
    page.wait_for_url("**/servers/clock")
    page.wait_for_selector("#server-status.status-connected", timeout=30_000)
    assert page.inner_text("#connected-at") != "—"  # the live status event refreshed it
    assert "not-to-be-shown" not in page.content()
    # A call through the REST API the page's own session may make; then its usage shows.
    page.evaluate(
        """() => MC.ui.api("POST", "/api/mcps/clock/tools/get_current_time/call",
                           {arguments: {timezone: "Europe/Paris"}})"""
    )
    for _ in range(40):
        tab.open("/servers/clock?window=1h")
        row = page.locator('#tool-usage tr[data-tool="get_current_time"] td.num').first
        if row.inner_text() == "1":
            break
        page.wait_for_timeout(250)
    assert page.locator('#tool-usage tr[data-tool="get_current_time"] td.num').first.inner_text() == "1"
    assert page.locator("#usage-chart canvas").count() > 0
    shot(tab, "server-page")

    # A reconnect that finishes clears "reconnecting…".
    page.click("#reconnect")
    page.wait_for_function(
        "() => document.getElementById('reconnect-result').textContent === 'reconnected'", timeout=30_000
    )
    assert page.inner_text("#server-status") == "connected"

    # Editing shows the environment masked; disabling lets it go.
    tab.open("/servers/clock/edit")
    assert page.input_value("textarea[name=env]") == "CLOCK_TOKEN=***"
    shot(tab, "edit-server")
    tab.open("/servers/clock")
    page.click("#toggle-server")
    page.wait_for_selector("#server-disabled")


def test_a_failing_server_says_what_went_wrong(tabs: Any) -> None:
    tab = tabs("ada")
    page = tab.open("/servers/new")
    page.fill("input[name=id]", "broken")
    page.fill("input[name=command]", "no-such-mcp-server")
    page.click("#test-connection")
    page.wait_for_selector("#test-error")
    assert "The command 'no-such-mcp-server' was not found" in page.inner_text("#test-error")
    shot(tab, "add-server-not-found")

    script = "import sys; print('error: TIME_API_KEY is not set', file=sys.stderr); sys.exit(2)"
    page.fill("input[name=command]", sys.executable)
    page.fill("textarea[name=args]", f"-c\n{script}")
    page.click("#test-connection")
    page.wait_for_selector("#test-error:has-text('exited')")
    assert "The server process exited before it answered" in page.inner_text("#test-error")
    assert "TIME_API_KEY is not set" in page.inner_text("#test-result pre.stderr")
    shot(tab, "add-server-exited")

    # A form missing its command says so next to the field.
    page.fill("input[name=command]", "")
    page.click("#save-server")
    page.wait_for_selector('[data-error-for="command"]')
    assert page.inner_text('[data-error-for="command"]') == "required for a stdio server"
    shot(tab, "add-server-field-error")


@pytest.mark.parametrize("username", ["victor", "olga"])
def test_who_may_not_register_servers_sees_no_add_button(tabs: Any, username: str) -> None:
    tab = tabs(username)
    page = tab.open("/servers")
    assert page.locator("#add-server").count() == 0
    response = page.goto(tab.web.url + "/servers/new")
    assert response is not None and response.status == 403
    tab.errors.clear()  # the browser reports the page's own 403
    if username == "victor":
        shot(tab, "servers-as-viewer")

"""The control room in a real browser: Playwright driving Debian's Chromium against a real
web process (daphne, its gateway inside) on the test database.

One browser and one web process for the whole module; each test signs in through the
login form in a fresh browser context, and fails on any JavaScript console error.
Screenshots of every page land in var/screenshots/pages/ (ignored by git).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from tests.conftest import ago, event
from tests.faults import PrivateRedis
from tests.kiwi_workspace import kiwi_workspace
from tests.processes import ROOT, Server, clean_env, daphne, free_port, post_events

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = ROOT / "var" / "screenshots" / "pages"
PASSWORD = "correct horse battery staple"
WAIT_MS = 15_000
WEB_SECRET_KEY = "browser-tests"


def _web_env(log_dir: Path, redis_url: str | None) -> dict[str, str]:
    """The web process reads and writes the test database the tests use."""
    db = connection.settings_dict
    extra = {"SECRET_KEY": WEB_SECRET_KEY, "MC_GATEWAY_EMBEDDED": "true", "MC_DATA_DIR": str(log_dir)}
    if connection.vendor == "postgresql":
        extra["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        extra["MC_CONN_MAX_AGE"] = "0"
    else:
        extra["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    if redis_url:
        extra["REDIS_URL"] = redis_url
        extra["MC_CHANNEL_PREFIX"] = os.environ.get("MC_CHANNEL_PREFIX", "mc") + "browser"
    return clean_env(**extra)


def celery_worker(env: dict[str, str], log: Path) -> Server:
    """A Celery worker (directive runs go to Celery when Redis is configured)."""
    command = [sys.executable, "-m", "celery", "-A", "missioncontrol", "worker", "-P", "prefork", "-c", "1"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    return Server(command, 0, env, log)


@pytest.fixture(scope="module")
def web(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_dir = tmp_path_factory.mktemp("web")
    with ExitStack() as stack:
        redis_url = None
        if settings.REDIS_URL:
            # A Redis of the module's own: the Celery queue the web process hands directive
            # runs to is not one another test run's worker could take them from.
            private = PrivateRedis(log_dir, persistent=False)
            private.start()
            stack.callback(private.kill)
            redis_url = f"redis://127.0.0.1:{private.port}/0"
        env = _web_env(log_dir, redis_url)
        server = daphne(free_port(), env, log_dir / "daphne.log")
        stack.callback(server.stop)
        if redis_url:
            stack.callback(celery_worker(env, log_dir / "worker.log").stop)
        server.wait_healthy()
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls of
    # the tests are still plain synchronous ones (Django documents this switch for it).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as p:
            instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Visit:
    """A signed-in browser tab that records console errors and takes screenshots."""

    def __init__(self, web: Server, page: Any) -> None:
        self.web, self.page = web, page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.set_default_timeout(WAIT_MS)

    def open(self, path: str) -> Any:
        response = self.page.goto(self.web.url + path, wait_until="networkidle")
        assert response is not None and response.status == 200, (path, response and response.status)
        return self.page

    def live(self) -> None:
        self.page.wait_for_selector('#ws-state[data-state="live"]')

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def operator(db: None, settings: Any) -> Any:
    # The web process checks passwords with Django's default hashers, not the tests' MD5.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)


def next_theme_saved(page: Any) -> Any:
    """Press `t` and wait for the preference's PATCH answer: a page opened earlier could
    abort it, or render before it lands (a CI run saw 'system')."""
    saved = "/api/preferences"
    with page.expect_response(lambda r: saved in r.url and r.request.method == "PATCH") as answer:
        page.keyboard.press("t")
    return answer.value


def sign_in(visit: Visit, next_path: str = "/") -> None:
    page = visit.page
    page.goto(f"{visit.web.url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{visit.web.url}{next_path}")


@pytest.fixture
def visit(web: Server, browser: Any, operator: Any) -> Iterator[Visit]:
    # A dark system theme, so the screenshots show it; the `t` key switches to light.
    context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme="dark")
    tab = Visit(web, context.new_page())
    sign_in(tab)
    yield tab
    context.close()
    assert tab.errors == [], tab.errors


def test_it_signs_in_through_the_login_form(web: Server, browser: Any, operator: Any) -> None:
    context = browser.new_context()
    tab = Visit(web, context.new_page())
    try:
        tab.page.goto(f"{web.url}/threads")
        assert "/accounts/login/" in tab.page.url
        tab.page.fill("input[name=username]", "ops")
        tab.page.fill("input[name=password]", "wrong")
        tab.page.click("button[type=submit]")
        assert "didn't match" in tab.page.inner_text(".alert")
        tab.shot("login")
        tab.page.fill("input[name=password]", PASSWORD)
        tab.page.click("button[type=submit]")
        tab.page.wait_for_url(f"{web.url}/threads")
        assert tab.page.inner_text(".user-menu summary") == "ops"
    finally:
        context.close()
    assert tab.errors == [], tab.errors


def test_a_thread_ingested_after_the_dashboard_opened_appears_without_reload(
    visit: Visit, ingest_key: str
) -> None:
    page = visit.open("/")
    visit.live()
    assert page.locator('tr[data-thread="T-live"]').count() == 0
    post_events(
        visit.web.url,
        ingest_key,
        [
            event("thread.started", thread_id="T-live", user_input="rotate the keys"),
            event("log", 0.1, level="ERROR", service="agent", thread_id="T-live", message="key store locked"),
        ],
    )
    row = page.wait_for_selector('tr[data-thread="T-live"]')
    assert "rotate the keys" in row.inner_text() and "running" in row.inner_text()
    page.wait_for_selector("#log-stream li:has-text('key store locked')")
    assert page.inner_text("#active-count") == "1"
    post_events(visit.web.url, ingest_key, [event("thread.ended", 1, thread_id="T-live", status="complete")])
    page.wait_for_selector('tr[data-thread="T-live"] .status-complete')
    assert page.inner_text("#active-count") == "0"
    visit.shot("dashboard")


def test_the_inspector_shows_steps_arriving_live(visit: Visit, ingest_key: str) -> None:
    post_events(
        visit.web.url,
        ingest_key,
        [
            event("thread.started", thread_id="T-insp", user_input="summarise the repo"),
            event("thread.started", 0.5, thread_id="T-child", parent_id="T-insp", user_input="read files"),
        ],
    )
    page = visit.open("/threads/T-insp")
    visit.live()
    assert page.locator(".wf-row").count() == 0
    steps = [
        event(
            "thread.step",
            1,
            thread_id="T-insp",
            sequence=1,
            step_type="tool_call",
            description="git__git_log",
            details={"mcp_id": "git", "tool": "git_log", "arguments": {"max_count": 3}},
            status="complete",
        ),
        event(
            "thread.step",
            1.4,
            thread_id="T-insp",
            sequence=2,
            step_type="tool_result",
            description="git__git_log: ok",
            details={"mcp_id": "git", "tool": "git_log", "summary": "3 commits"},
            status="complete",
            duration_ms=400,
        ),
        event("thread.message", 1.5, thread_id="T-insp", role="agent", content="Three commits today."),
        event(
            "permission.check",
            1.6,
            thread_id="T-insp",
            user_id="alice",
            resource="repo/main",
            action="read",
            granted=False,
            reason="no grant",
        ),
        event("log", 1.7, level="WARN", service="agent", thread_id="T-insp", message="slow disk"),
    ]
    post_events(visit.web.url, ingest_key, steps)
    page.wait_for_selector('.wf-row[data-sequence="2"]')
    assert page.locator(".wf-row").count() == 2
    assert "400 ms" in page.inner_text('.wf-row[data-sequence="2"]')
    call = page.wait_for_selector('.tool-call[data-sequence="1"]')
    page.click('.tool-call[data-sequence="1"] > summary')  # arguments and result fold away until asked for
    assert "git__git_log" in call.inner_text() and "max_count" in call.inner_text()
    assert "3 commits" in call.inner_text()
    page.wait_for_selector("#messages :text('Three commits today.')")
    page.wait_for_selector("#permission-rows :text('repo/main')")
    page.wait_for_selector("#thread-logs :text('slow disk')")
    assert "T-child" in page.inner_text("#children")
    post_events(visit.web.url, ingest_key, [event("thread.ended", 2, thread_id="T-insp", status="complete")])
    page.wait_for_selector("#thread-status.status-complete")
    visit.shot("thread-inspector")


def test_the_terminal_calls_mcp_server_time_and_shows_the_result(visit: Visit) -> None:
    page = visit.open("/servers")
    spec = {"id": "time", "command": sys.executable, "args": ["-m", "mcp_server_time"]}
    page.evaluate("spec => MC.ui.api('POST', '/api/mcps', spec)", spec)
    deadline = time.monotonic() + 60
    while page.evaluate("() => MC.ui.api('GET', '/api/mcps/time')")["status"] != "connected":
        assert time.monotonic() < deadline, "the gateway did not connect mcp-server-time"
        time.sleep(0.3)
    page = visit.open("/servers/time/terminal?tool=get_current_time")
    assert page.inner_text("#tool-name") == "get_current_time"
    page.fill("[data-field=timezone]", "Europe/Paris")
    page.click("#run")
    result = page.wait_for_selector("#output .line-result pre")
    assert "Europe/Paris" in result.inner_text()
    assert "✓ result" in page.inner_text("#output")
    assert page.locator("#history li button").count() == 1
    visit.shot("terminal")
    page.click("[data-mode=rpc]")
    page.fill(
        "#rpc-body",
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": '
        '{"name": "time__get_current_time", "arguments": {"timezone": "UTC"}}}',
    )
    page.click("#rpc-send")
    page.wait_for_selector("#output .line-result:has-text('jsonrpc')")
    assert "UTC" in page.inner_text("#output")
    visit.shot("terminal-rpc")
    page = visit.open("/servers/time")
    assert "get_current_time" in page.inner_text("body")
    visit.shot("server")


def test_the_graph_renders_its_nodes(visit: Visit, ingest_key: str) -> None:
    post_events(
        visit.web.url,
        ingest_key,
        [
            event("thread.started", thread_id="T-g1", user_input="graph me"),
            event("thread.started", 1, thread_id="T-g2", parent_id="T-g1"),
        ],
    )
    page = visit.open("/graph")
    page.wait_for_function("() => document.getElementById('graph-count').textContent.includes('nodes')")
    nodes = page.evaluate("() => MC.graph.nodes().map((n) => n.id())")
    assert {"server:srv-alpha", "thread:T-g1", "thread:T-g2"} <= set(nodes), nodes
    edges = page.evaluate(
        "() => MC.graph.edges().map((e) => [e.data('source'), e.data('kind'), e.data('target')])"
    )
    assert ["thread:T-g2", "child_of", "thread:T-g1"] in edges, edges
    assert page.locator("#graph canvas").count() > 0
    visit.shot("graph")


PAGES = [
    ("dashboard-empty", "/"),
    ("threads", "/threads?status=running"),
    ("logs", "/logs"),
    ("servers", "/servers"),
    ("permissions", "/permissions"),
    ("directives", "/directives"),
    ("directive", "/directives/nightly-check"),
    ("knowledge", "/knowledge"),
    ("knowledge-entry", "/knowledge/disk-pressure"),
    ("search", "/search?q=deploy"),
    ("settings", "/settings"),
    ("tokens", "/settings/tokens"),
    ("automations-list", "/automations"),
    ("automation-new", "/automations/new?directive=nightly-check"),
    ("executions", "/executions"),
    ("server-pushing", "/servers/srv-alpha"),
    ("server-add", "/servers/new"),
    ("server-edit", "/servers/srv-alpha/edit"),
    ("server-remove", "/servers/srv-alpha/remove"),
    ("thread-error", "/threads/T-err"),
    ("usage", "/usage?window=7d"),
    # Under the Content-Security-Policy too: the graph, the terminal, the compliance
    # report, the API docs and the admin.
    ("graph", "/graph"),
    ("terminal", "/servers/srv-alpha/terminal"),
    ("compliance", "/permissions/compliance"),
    ("api-docs", "/api/schema/docs/"),
    ("admin", "/admin/"),
    ("admin-servers", "/admin/mcps/mcpserver/"),
]


def test_every_page_loads_without_console_errors(visit: Visit, ingest_key: str, tmp_path: Path) -> None:
    from automations.models import Directive, KnowledgeEntry
    from kiwi.models import KiwiWorkspace

    # A Kiwi project (made in the admin, so the web process's config sync leaves it be).
    shop = kiwi_workspace(tmp_path).project
    KiwiWorkspace.objects.create(
        name="shop", root=str(shop / ".ai"), project_path=str(shop), source=KiwiWorkspace.Source.ADMIN
    ).index()

    directive = Directive.objects.upsert_from_yaml(
        "name: nightly-check\nversion: 1\ndescription: Look at the fleet every night\nsteps:\n"
        "  - name: health\n    script: check_health.py\n  - name: time\n    server: time\n"
        "    tool: get_current_time\n"
    )
    KnowledgeEntry.objects.create(
        title="Disk pressure", content="Mentions [[slow-builds]].", source_directive=directive
    )
    KnowledgeEntry.objects.create(title="Slow builds", slug="slow-builds", content="See Disk pressure.")
    post_events(
        visit.web.url,
        ingest_key,
        # A minute ago: the escalation banner counts the last 24 hours, whatever the date.
        [
            event("thread.started", timestamp=ago(60), thread_id="T-err", user_input="deploy the site"),
            event(
                "log",
                timestamp=ago(59.8),
                level="ERROR",
                service="deployer",
                thread_id="T-err",
                message="deploy failed",
            ),
            event(
                "permission.check",
                timestamp=ago(59.7),
                thread_id="T-err",
                user_id="bob",
                resource="prod/db",
                action="write",
                granted=False,
                escalation_detected=True,
                reason="role escalation",
            ),
            event("thread.ended", timestamp=ago(59), thread_id="T-err", status="error"),
        ],
    )
    from automations.models import Automation, DirectiveExecution, StepRun

    automation = Automation.objects.create(
        name="nightly",
        directive=directive,
        trigger="event",
        event_type="thread.ended",
        filters={"status": "error"},
    )
    failed = DirectiveExecution.objects.create(
        directive=directive,
        directive_name=directive.name,
        automation=automation,
        status="failed",
        error="boom",
    )
    StepRun.objects.create(
        execution=failed,
        sequence=1,
        path="steps[0]",
        name="health",
        kind="script",
        status="failed",
        error="no script named check_health.py",
    )
    dynamic = [
        ("automation", f"/automations/{automation.pk}"),
        ("execution-failed", f"/executions/{failed.pk}"),
        ("kiwi", "/kiwi"),
        ("kiwi-directive", "/kiwi/shop/directive/deploy_app"),
    ]
    for name, path in PAGES + dynamic:
        visit.open(path)
        visit.shot(name)
    assert visit.errors == [], visit.errors
    missing = visit.page.goto(visit.web.url + "/no/such/page", wait_until="networkidle")
    assert missing is not None and missing.status == 404
    assert "There is nothing at /no/such/page" in visit.page.inner_text("main")
    visit.shot("not-found")
    # The browser reports the page's own 404 status; nothing else may fail on it.
    assert [e for e in visit.errors if "404" not in e] == [], visit.errors
    assert len(visit.errors) == 1, visit.errors
    visit.errors.clear()
    page = visit.open("/kiwi/shop/directive/deploy_app")
    assert "check_window" in page.inner_text("main")
    page = visit.open("/permissions")
    banner = page.inner_text("#escalations")
    assert "1 escalation detected" in banner
    assert "flagged by the agent that reported it" in banner  # no rule of ours fired: the agent's own flag
    # The theme is the user's preference: `t` cycles it and it is stored.
    assert next_theme_saved(page).ok
    page.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
    page = visit.open("/logs")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    visit.shot("logs-light")
    # Keyboard: `g t` goes to the threads, `?` opens the help.
    page.keyboard.press("g")
    page.keyboard.press("t")
    page.wait_for_url(f"{visit.web.url}/threads")
    page.keyboard.press("?")
    assert page.is_visible("#help")
    # A small screen folds the navigation behind the menu button.
    page.set_viewport_size({"width": 420, "height": 800})
    page.goto(f"{visit.web.url}/")
    assert not page.is_visible(".site-nav")
    page.click(".menu-toggle")
    assert page.is_visible(".site-nav")
    visit.shot("dashboard-phone")


# A user directive over Mission Control's own scripts (the web process runs it): one step,
# then a foreach of `rounds` steps, long enough to be watched while it runs.
FLEET_PULSE = """name: fleet-pulse
description: Look for stalled threads, then note a health line per round
inputs:
  timeout_seconds:
    type: integer
    description: A thread idle this long is stalled
  rounds:
    type: integer
    default: 30
permissions: [read:threads, write:logs]
steps:
  - name: stalled
    script: find_stalled_threads
    inputs:
      timeout_seconds: "{{ inputs.timeout_seconds }}"
  - name: rounds
    foreach: "range(inputs.rounds)"
    steps:
      - name: note
        script: log_health_check
        inputs:
          checked: "{{ item }}"
"""

# Statuses and step counts the execution page shows, noted at each live swap.
WATCH_EXECUTION = """() => {
  const seen = (window.__seen = []);
  const note = () => {
    const live = document.getElementById("execution-live");
    seen.push([live.dataset.status, live.querySelectorAll("tr[data-sequence]").length]);
  };
  note();
  new MutationObserver(note).observe(document.getElementById("execution"), { childList: true });
}"""


def test_an_automation_made_in_the_builder_appears_and_runs(visit: Visit) -> None:
    from automations.models import Automation, Directive, DirectiveExecution

    Directive.objects.upsert_from_yaml(FLEET_PULSE)
    page = visit.open("/automations/new")
    visit.live()
    page.fill("input[name=name]", "pulse-every-5")
    page.select_option("select[name=directive]", "fleet-pulse")
    page.wait_for_selector("[data-input=timeout_seconds]")  # the directive's inputs, as a form
    assert page.get_attribute("[data-input=rounds]", "placeholder") == "30"
    page.fill("[data-input=timeout_seconds]", "600")
    page.check("input[name=trigger][value=schedule]")
    assert page.is_visible("input[name=schedule]") and not page.is_visible("input[name=event_type]")
    page.fill("input[name=schedule]", "*/5 * * *")
    assert "is not a cron expression" in page.inner_text("#next-runs [data-error-for=schedule]")
    page.fill("input[name=schedule]", "*/5 * * * *")
    page.wait_for_selector("#next-runs li >> nth=4")
    runs = page.locator("#next-runs li").all_inner_texts()
    assert len(runs) == 5 and all(int(r[-2:]) % 5 == 0 for r in runs), runs
    visit.shot("automation-builder")
    page.click("#save-automation")
    page.wait_for_url(f"{visit.web.url}/automations")
    row = page.locator('tr[data-automation="pulse-every-5"]')
    assert "fleet-pulse" in row.inner_text() and "*/5 * * * *" in row.inner_text()
    automation = Automation.objects.get(name="pulse-every-5")
    assert automation.inputs == {"timeout_seconds": 600} and automation.schedule == "*/5 * * * *"
    visit.shot("automations")

    page.click('[data-run="pulse-every-5"]')
    page.wait_for_url(re.compile(r"/executions/\d+$"))
    page.evaluate(WATCH_EXECUTION)
    page.wait_for_selector('#execution-live[data-status="completed"]', timeout=90_000)
    seen = page.evaluate("() => window.__seen")
    # The page was not reloaded: it went from unfinished to completed, steps arriving live.
    assert seen[0][0] in ("pending", "running"), seen
    assert len({count for _, count in seen}) > 2, seen
    assert page.locator("#step-runs tr[data-sequence]").count() == 32
    assert page.locator('#step-runs tr[data-status="completed"]').count() == 32
    assert "stalled" in page.inner_text('#step-runs tr[data-sequence="1"]')
    execution = DirectiveExecution.objects.get(automation=automation)
    assert execution.status == "completed" and execution.triggered_by == "manual"
    visit.shot("execution")
    next_theme_saved(page)  # light, saved before the next page opens
    page.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
    visit.shot("execution-light")
    page = visit.open(f"/automations/{automation.pk}")
    assert page.locator(f'tr[data-execution="{execution.pk}"]').count() == 1
    visit.shot("automation-light")


def test_graphiql_runs_a_query_from_local_files_alone(visit: Visit) -> None:
    from threads.models import Thread

    Thread.objects.create(id="T-graphiql", user_input="asked through GraphiQL")
    fetched: list[str] = []
    visit.page.on("request", lambda r: fetched.append(r.url))
    page = visit.open("/graphql")
    page.wait_for_selector(".graphiql-container")
    page.click(".graphiql-execute-button")
    page.wait_for_function("() => document.querySelector('.result-window').innerText.includes('T-graphiql')")
    visit.shot("graphiql")
    # No CDN: every file came from Mission Control itself.
    assert fetched and all(u.startswith(visit.web.url) or u.startswith("data:") for u in fetched), fetched


def test_the_admin_and_a_json_page_ask_for_nothing_that_is_missing(visit: Visit) -> None:
    missing: list[str] = []
    visit.page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page = visit.open("/admin/")
    assert "Mission Control administration" in page.inner_text("#site-name")
    visit.open("/api/threads")  # JSON: the browser asks for /favicon.ico itself
    page.goto(visit.web.url + "/favicon.ico")
    assert missing == [], missing

"""The HTML pages, server side: sign-in, lists through the API's FilterSets, saved views,
the inspector, servers, search, settings and the dashboard's activity series."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.models import HealthCheck, MCPServer, Tool
from missioncontrol.activity import activity, error_rate, percentile
from missioncontrol.models import SavedView, UserPreference
from tests.conftest import event, store
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/threads",
    "/logs",
    "/servers",
    "/graph",
    "/permissions",
    "/directives",
    "/knowledge",
    "/settings",
]


def test_it_sends_a_signed_out_visitor_to_the_login_page() -> None:
    anonymous = Client()
    for path in PAGES:
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/?next="), path


def test_it_signs_in_through_the_login_form_and_out_again() -> None:
    alice = get_user_model().objects.create_user("alice", password="s3cret-enough")
    alice.groups.add(Group.objects.get(name="viewer"))  # without a role, pages answer 403
    browser = Client()
    assert "Sign in" in browser.get("/accounts/login/").content.decode()
    wrong = browser.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert "didn't match" in wrong.content.decode()
    right = browser.post(
        "/accounts/login/", {"username": "alice", "password": "s3cret-enough", "next": "/logs"}
    )
    assert right.status_code == 302 and right["Location"] == "/logs"
    assert browser.get("/logs").status_code == 200
    assert browser.post("/accounts/logout/").status_code == 302
    assert browser.get("/logs").status_code == 302


def test_every_page_renders_for_a_signed_in_user(admin_client: Client) -> None:
    for path in PAGES:
        page = admin_client.get(path)
        assert page.status_code == 200, path
        assert b'id="ws-state"' in page.content and b"/static/mc/live.js" in page.content, path


def test_the_thread_list_filters_with_the_api_filterset(admin_client: Client) -> None:
    store(
        event("thread.started", thread_id="T-ok", user_input="build the docs"),
        event("thread.started", thread_id="T-bad", user_input="deploy the site"),
        event("thread.ended", 1, thread_id="T-bad", status="error"),
        mcp_id="srv-alpha",
    )
    page = admin_client.get("/threads?status=error").content.decode()
    assert "T-bad" in page and "T-ok" not in page
    page = admin_client.get("/threads?search=docs").content.decode()
    assert "T-ok" in page and "T-bad" not in page
    refused = admin_client.get("/threads?colour=red").content.decode()
    assert "colour" in refused and "Unknown parameter." in refused and "T-ok" not in refused


def test_a_saved_view_fills_in_the_list_filters(admin_client: Client) -> None:
    store(
        event("log", level="ERROR", message="disk full", thread_id="T-1"),
        event("log", 1, level="INFO", message="all good", thread_id="T-1"),
        mcp_id="srv-alpha",
    )
    user = get_user_model().objects.get(username="admin")
    view = SavedView.objects.create(
        user=user, name="errors", view_config={"kind": "logs", "filters": {"levels": "ERROR"}}
    )
    page = admin_client.get(f"/logs?view={view.id}").content.decode()
    assert "disk full" in page and "all good" not in page
    assert f'value="{view.id}" selected' in page
    assert "/api/logs/export?format=csv&amp;levels=ERROR" in page


def test_the_log_stream_tails_with_the_same_filters_live(admin_client: Client) -> None:
    page = admin_client.get("/logs?levels=WARN&levels=ERROR&mcps=git").content.decode()
    assert '{"mcps": ["git"], "levels": ["WARN", "ERROR"]}' in page


def test_the_inspector_shows_the_thread_its_parent_and_children(admin_client: Client) -> None:
    store(
        event("thread.started", thread_id="T-root", user_input="plan the release"),
        event("thread.started", 1, thread_id="T-kid", parent_id="T-root", user_input="write notes"),
        event("thread.started", 2, thread_id="T-grandkid", parent_id="T-kid"),
        event("thread.step", 3, thread_id="T-kid", sequence=1, description="read the changelog"),
        event("permission.check", 4, thread_id="T-kid", resource="repo/tags", granted=False),
        mcp_id="srv-alpha",
    )
    page = admin_client.get("/threads/T-kid").content.decode()
    assert 'href="/threads/T-root"' in page and 'href="/threads/T-grandkid"' in page
    assert "read the changelog" in page and "repo/tags" in page  # the state and checks, for the script
    assert admin_client.get("/threads/T-nope").status_code == 404


def test_the_server_pages_show_status_catalog_and_latency(admin_client: Client) -> None:
    server = MCPServer.objects.create(
        id="time", name="time", transport="stdio", command="uvx", status="connected"
    )
    Tool.objects.create(
        server=server,
        name="get_current_time",
        description="Now",
        input_schema={"type": "object", "properties": {"timezone": {"type": "string"}}},
    )
    now = timezone.now()
    for i, latency in enumerate([3.0, 5.0, 4.0]):
        HealthCheck.objects.create(
            server=server, ok=True, latency_ms=latency, checked_at=now - timedelta(minutes=3 - i)
        )
    listing = admin_client.get("/servers").content.decode()
    assert "status-connected" in listing and "<polyline" in listing and "4.0 ms" in listing
    detail = admin_client.get("/servers/time").content.decode()
    assert "get_current_time" in detail and "timezone" in detail
    terminal = admin_client.get("/servers/time/terminal?tool=get_current_time").content.decode()
    assert '"input_schema": {"type": "object"' in terminal
    assert admin_client.get("/servers/nope").status_code == 404


def test_search_links_each_hit_to_its_page(admin_client: Client) -> None:
    store(
        event("thread.started", thread_id="T-dep", user_input="deployment failed twice"), mcp_id="srv-alpha"
    )
    page = admin_client.get("/search?q=deployment").content.decode()
    assert 'href="/threads/T-dep"' in page


def test_the_theme_is_the_users_preference_on_every_page(admin_client: Client) -> None:
    assert admin_client.post("/settings", {"theme": "dark"}).status_code == 200
    assert UserPreference.objects.get(user__username="admin").theme == "dark"
    assert 'data-theme="dark"' in admin_client.get("/threads").content.decode()
    admin_client.post("/settings", {"theme": "purple"})
    assert UserPreference.objects.get(user__username="admin").theme == "dark"


def test_the_dashboard_starts_from_the_stored_activity(admin_client: Client) -> None:
    thread = Thread.objects.create(id="T-now", status="error")
    now = timezone.now()
    for sequence, (duration, status) in enumerate([(10.0, "complete"), (30.0, "complete"), (50.0, "error")]):
        ExecutionStep.objects.create(
            thread=thread,
            sequence=sequence,
            timestamp=now,
            duration_ms=duration,
            step_type="tool_call",
            status=status,
        )
    rows = activity(
        Thread.objects.all(),
        ExecutionStep.objects.all(),
        LogEntry.objects.all(),
        PermissionEvent.objects.all(),
    )
    (busy,) = [r for r in rows if r["events"]]
    assert busy["events"] == 4 and busy["errors"] == 2  # the thread and its steps; the error step and thread
    assert (busy["p50"], busy["p95"], busy["p99"]) == (30.0, 50.0, 50.0)
    assert error_rate(rows) == 0.5
    assert len(rows) in (31, 32) and rows[0]["p50"] is None
    page = admin_client.get("/").content.decode()
    assert 'id="activity-data"' in page and "T-now" in page


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.95) == 95 and percentile(values, 0.99) == 99
    assert percentile([], 0.5) is None and percentile([7.0], 0.99) == 7.0

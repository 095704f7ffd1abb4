"""Bad input is answered with a 4xx naming what is wrong, never a 500 or silence.

Token refresh with the wrong token, times past the calendar, a path climbing out of
/static/, a WebSocket call_tool with a timeout that is no number, CSV cells a
spreadsheet would run, directive templates that would build huge strings or loop for
seconds.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from automations import templating
from tests.conftest import access_token, ago, event, post_batch, store
from tests.mcp_servers import api

pytestmark = pytest.mark.django_db

# Each overflowed the datetime arithmetic (OverflowError, a 500) before.
PAST_THE_CALENDAR = [
    ("since=999999999h", "since"),
    ("since=99999999999999w", "since"),
    ("to=9999-12-31T23:59:59-10:00", "to"),
    ("from=0001-01-01T00:00:00%2B05:00", "from"),
    ("from_timestamp=0001-01-01T00:00:00%2B05:00", "from_timestamp"),
]


@pytest.mark.parametrize("path", ["/api/logs", "/api/threads", "/api/permissions/audit", "/api/logs/export"])
@pytest.mark.parametrize(("query", "field"), PAST_THE_CALENDAR)
def test_it_answers_400_naming_a_time_past_the_calendar(
    client: Client, path: str, query: str, field: str
) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_the_compliance_report_refuses_a_period_past_the_calendar(client: Client) -> None:
    response = client.get("/api/permissions/compliance?to=0001-01-01T00:00:00%2B05:00")
    assert response.status_code == 400, response.content
    assert "to" in response.json()


@pytest.mark.django_db(transaction=True)
async def test_an_event_stamped_past_the_calendar_is_rejected_alone(ingest_key: str) -> None:
    body = {
        "events": [
            event("log", id="late", timestamp="9999-12-31T23:59:59-10:00"),
            event("log", id="fine", timestamp=ago(5)),
        ]
    }
    response = await post_batch(body, ingest_key)
    assert response.status_code < 300, response.text
    verdicts = {v["id"]: v for v in response.json()["results"]}
    assert verdicts["late"]["status"] == "rejected" and "timestamp" in str(verdicts["late"])
    assert verdicts["fine"]["status"] == "accepted"


@pytest.mark.parametrize("kind", ["access", "garbage", "missing"])
def test_refreshing_with_anything_but_a_refresh_token_is_401_or_400(
    anonymous_client: Client, viewer: User, kind: str
) -> None:
    body = {"access": {"refresh": access_token(viewer)}, "garbage": {"refresh": "not.a.jwt"}, "missing": {}}[
        kind
    ]
    response = anonymous_client.post("/api/auth/token/refresh/", body, "application/json")
    assert response.status_code == (400 if kind == "missing" else 401), response.content
    assert response.json()


async def test_a_path_climbing_out_of_static_is_404() -> None:
    from missioncontrol.asgi import django_http

    transport = httpx.ASGITransport(app=django_http)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for path in (
            "/static/../missioncontrol/settings.py",
            "/static/..%2fmanage.py",
            "/static/mc/../../README.md",
        ):
            response = await http.get(path)
            assert response.status_code == 404, (path, response.status_code)
        assert (await http.get("/static/mc/shell.js")).status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("timeout", ["soon", -1, 0, True, 10**9, [5]])
async def test_a_call_tool_timeout_that_is_no_usable_number_is_answered_naming_it(
    socket: Any, timeout: Any
) -> None:
    async with socket() as ws:
        await ws.send(
            type="command",
            channel="mcp:time",
            payload={"command": "call_tool", "tool": "get_current_time", "timeout": timeout},
            request_id="t1",
        )
        frame = await ws.recv()
        assert frame["type"] == "error" and frame["request_id"] == "t1"
        assert frame["payload"]["field"] == "timeout"
        assert "timeout" in frame["payload"]["reason"]


FORMULAS = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tlooks=fine", "\r=1"]


@pytest.mark.django_db(transaction=True)
async def test_the_log_export_neutralises_cells_a_spreadsheet_would_run() -> None:
    from asgiref.sync import sync_to_async

    logs = [
        event("log", i, id=f"f{i}", message=text, service=text, mcp_id="m") for i, text in enumerate(FORMULAS)
    ]
    await sync_to_async(store)(
        *logs, event("log", 99, id="plain", message="plain words", service="api", mcp_id="m")
    )
    response = await api("GET", "/api/logs/export?format=csv")
    assert response.status_code == 200
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(response.text))}
    for i, text in enumerate(FORMULAS):
        assert rows[f"f{i}"]["message"] == "'" + text
        assert rows[f"f{i}"]["service"] == "'" + text
    assert rows["plain"]["message"] == "plain words"


def test_the_compliance_csv_neutralises_cells_a_spreadsheet_would_run(client: Client) -> None:
    store(
        event("permission.check", id="p1", timestamp=ago(60), user_id="=cmd|' /C calc'!A0", resource="@x"),
    )
    exported = client.get("/api/permissions/compliance", {"format": "csv"})
    assert exported.status_code == 200, exported.content
    rows = [r for r in csv.DictReader(io.StringIO(exported.content.decode())) if r["section"] == "subject"]
    assert [r["subject"] for r in rows] == ["'=cmd|' /C calc'!A0"]


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x'|center(300000000) }}",
        "{{ '%300000000s' % 'x' }}",
        "{{ '%300000000s'|format('x') }}",
        "{{ '{:>300000000}'.format('x') }}",
        "{{ 'x'.ljust(300000000) }}",
        "{{ 'x'|indent(300000000, true) }}",
        "{{ ('a' * 1000000)|replace('a', 'aaaa') }}",
        "{{ (['x' * 100000] * 1000)|join }}",
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f('ab', 40) }}",
        "{% for i in range(10000) %}{{ 'y' * 200 }}{% endfor %}",
    ],
)
def test_a_template_that_would_build_a_huge_string_fails_naming_the_size_limit(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(templating.TemplateProblem, match="template size limit"):
        templating.render(template, {})
    assert time.monotonic() - started < 1


def test_nested_loops_stop_at_the_loop_limit() -> None:
    started = time.monotonic()
    with pytest.raises(templating.TemplateProblem, match="template loop limit"):
        templating.render(
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", {}
        )
    assert time.monotonic() - started < 1


def test_a_slow_template_stops_at_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "MAX_SECONDS", 0.2)
    started = time.monotonic()
    with pytest.raises(templating.TemplateProblem, match="template time limit"):
        templating.render("{% for i in range(2000) %}{{ (range(10000)|list)|sort|length }}{% endfor %}", {})
    assert time.monotonic() - started < 2


def test_ordinary_templates_still_render() -> None:
    context = {"items": [{"id": "T-1"}, {"id": "T-2"}], "name": "x"}
    text = "{% for t in items %}{{ loop.index }}/{{ loop.length }} {{ t.id ~ '-' ~ name }};{% endfor %}"
    assert templating.render(text, context) == "1/2 T-1-x;2/2 T-2-x;"
    assert templating.render("{{ '%5s|%-3d' % ('x', 7) }} {{ '{:>4}'.format(1) }}", {}) == "    x|7      1"
    assert templating.render("{{ items|map(attribute='id')|join(',') }}", context) == "T-1,T-2"
    assert templating.render("{{ [1, 2] + [3] }}", {}) == [1, 2, 3]


def test_a_directive_with_a_control_character_is_400_naming_the_source(client: Client) -> None:
    answer = client.post("/api/internal/directives", {"source": "name: x\x89\nsteps: []"}, "application/json")
    assert answer.status_code == 400, answer.content
    assert "invalid YAML" in str(answer.json())


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/mcps/time/reconnect", "POST"),
        ("/api/mcps/time/tools/get_current_time/call", "POST"),
        ("/api/permissions/compliance", "GET"),
    ],
)
def test_a_method_a_plain_api_view_does_not_take_is_405_naming_the_ones_it_does(
    client: Client, path: str, allowed: str
) -> None:
    answer = client.generic("TRACE", path)
    assert answer.status_code == 405 and answer["Allow"] == allowed


def test_a_bearer_request_of_a_method_django_does_not_know_is_405_not_a_csrf_page(superuser: User) -> None:
    client = Client(enforce_csrf_checks=True)
    answer = client.generic(
        "QUERY", "/api/permissions/compliance", HTTP_AUTHORIZATION=f"Bearer {access_token(superuser)}"
    )
    assert answer.status_code == 405 and answer["Allow"] == "GET"
    session = Client(enforce_csrf_checks=True)
    session.force_login(superuser)
    refused = session.post("/api/mcps/time/reconnect")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]

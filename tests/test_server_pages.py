"""Adding, editing, disabling and removing servers on the pages, as those the REST API
lets register servers may; and a server's page with its usage and its status words."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from mcps.models import MCPServer
from tests.conftest import signed_in
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db

STDIO = {
    "id": "time",
    "transport": "stdio",
    "command": "uvx",
    "args": "mcp-server-time\n--local-timezone=UTC",
}


def post(browser: Client, path: str, **fields: Any) -> Any:
    return browser.post(path, {"enabled": "on", **fields})


def error_for(html: str, field: str) -> str:
    marker = f'data-error-for="{field}" role="alert">'
    assert marker in html, f"no error shown next to {field}"
    return html.split(marker, 1)[1].split("<", 1)[0]


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_who_may_not_register_through_the_api_sees_no_add_button_and_is_refused(
    request: pytest.FixtureRequest, persona: str
) -> None:
    browser = signed_in(request.getfixturevalue(persona))
    MCPServer.objects.create(id="time", name="time", transport="stdio", command="uvx")
    assert 'id="add-server"' not in browser.get("/servers").content.decode()
    page = browser.get("/servers/time").content.decode()
    assert 'id="edit-server"' not in page and 'id="remove-server"' not in page
    assert browser.get("/servers/new").status_code == 403
    assert post(browser, "/servers/new", **STDIO).status_code == 403
    assert browser.post("/servers/time/enable", {"enabled": "false"}).status_code == 403
    assert browser.post("/servers/time/remove").status_code == 403
    assert browser.post("/servers/import", {"config": "{}"}).status_code == 403
    assert MCPServer.objects.get(id="time").enabled is True


def test_an_admin_adds_a_stdio_server_with_its_environment(admin: Any) -> None:
    browser = signed_in(admin)
    assert 'id="add-server"' in browser.get("/servers").content.decode()
    answer = post(browser, "/servers/new", **STDIO, env="TZ_TOKEN=s3cret-value\nLANG=C", name="Clock")
    assert answer.status_code == 302 and answer["Location"] == "/servers/time"
    server = MCPServer.objects.get(id="time")
    assert (server.name, server.source, server.command) == ("Clock", "ui", "uvx")
    assert server.args == ["mcp-server-time", "--local-timezone=UTC"]
    assert server.env == {"TZ_TOKEN": "s3cret-value", "LANG": "C"}
    assert "s3cret-value" not in browser.get("/servers/time").content.decode()


def test_an_http_server_takes_its_url_and_headers(admin: Any) -> None:
    browser = signed_in(admin)
    fields = {"id": "remote", "transport": "sse", "url": "https://mcp.example.com/sse"}
    answer = post(browser, "/servers/new", **fields, headers="Authorization: Bearer abc123")
    assert answer.status_code == 302
    server = MCPServer.objects.get(id="remote")
    assert (server.transport, server.headers) == ("sse", {"Authorization": "Bearer abc123"})


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"command": ""}, "command", "required for a stdio server"),
        ({"id": "bad id!"}, "id", "letters, digits, &#x27;-&#x27; and &#x27;_&#x27; only"),
        ({"id": "new"}, "id", "reserved: /servers/new and /servers/import"),
        ({"env": "JUSTANAME"}, "env", "line 1: expected NAME=value"),
        ({"default_arguments": "{nope"}, "default_arguments", "not valid JSON"),
        (
            {"default_arguments": '{"*": 5}'},
            "default_arguments",
            "*: expected an object of arguments, got int",
        ),
        ({"log_files": "text"}, "log_files", "[0].path: required"),
        ({"transport": "streamable_http", "url": "not a url"}, "url", "Enter a valid URL."),
    ],
)
def test_a_problem_shows_next_to_its_field(
    admin: Any, fields: dict[str, str], field: str, reason: str
) -> None:
    answer = post(signed_in(admin), "/servers/new", **{**STDIO, **fields})
    assert answer.status_code == 200
    assert error_for(answer.content.decode(), field).startswith(reason)
    assert not MCPServer.objects.filter(id__in=["time", "bad id!"]).exists()


def test_an_id_taken_is_refused_rather_than_overwritten(admin: Any) -> None:
    MCPServer.objects.create(id="time", name="time", transport="stdio", command="other")
    answer = post(signed_in(admin), "/servers/new", **STDIO)
    assert error_for(answer.content.decode(), "id") == "a server with this id exists: edit it from its page"
    assert MCPServer.objects.get(id="time").command == "other"


def test_editing_shows_secrets_masked_and_keeps_those_left_masked(admin: Any) -> None:
    MCPServer.objects.create(
        id="time",
        name="time",
        transport="stdio",
        command="uvx",
        env={"API_KEY": "k-123456", "MODE": "a"},
        log_retention={"hot": "3 days"},
    )
    browser = signed_in(admin)
    form = browser.get("/servers/time/edit").content.decode()
    assert "API_KEY=***" in form and "k-123456" not in form
    answer = post(
        browser,
        "/servers/time/edit",
        transport="stdio",
        command="uvx",
        env="API_KEY=***\nMODE=b",
        name="Clock",
    )
    assert answer.status_code == 302, answer.content.decode()
    server = MCPServer.objects.get(id="time")
    assert server.env == {"API_KEY": "k-123456", "MODE": "b"}
    assert server.name == "Clock" and server.log_retention == {"hot": "3 days"}


def test_disabling_enabling_and_removing(admin: Any) -> None:
    MCPServer.objects.create(id="time", name="time", transport="stdio", command="uvx")
    browser = signed_in(admin)
    assert browser.post("/servers/time/enable", {"enabled": "false"}).status_code == 302
    assert MCPServer.objects.get(id="time").enabled is False
    assert 'id="server-disabled"' in browser.get("/servers/time").content.decode()
    browser.post("/servers/time/enable", {"enabled": "true"})
    assert MCPServer.objects.get(id="time").enabled is True
    assert "Remove time</button>" in browser.get("/servers/time/remove").content.decode()
    assert MCPServer.objects.filter(id="time").exists()  # asking removes nothing
    assert browser.post("/servers/time/remove")["Location"] == "/servers"
    assert not MCPServer.objects.filter(id="time").exists()


def test_importing_an_mcp_servers_document_registers_each_and_names_the_failures(admin: Any) -> None:
    config = (
        '{"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]},'
        ' "docs": {"url": "https://docs.example.com/mcp"}, "broken": {"args": []}}}'
    )
    page = signed_in(admin).post("/servers/import", {"config": config}).content.decode()
    assert (
        'added <a href="/servers/time">time</a>' in page and 'added <a href="/servers/docs">docs</a>' in page
    )
    assert "broken not imported: command: required (or &#x27;url&#x27; for an HTTP server)" in page
    added = MCPServer.objects.exclude(id="mission-control").values_list("id", "source")
    assert set(added) == {("time", "import"), ("docs", "import")}
    bad = signed_in(admin).post("/servers/import", {"config": "{}"}).content.decode()
    assert error_for(bad, "config") == "expected a JSON object with an &quot;mcpServers&quot; object"


def test_testing_a_connection_with_no_gateway_says_so(admin: Any) -> None:
    page = signed_in(admin).post("/servers/new/test", STDIO).content.decode()
    assert "the MCP gateway is not running" in page
    unfinished = signed_in(admin).post("/servers/new/test", {**STDIO, "command": ""}).content.decode()
    assert 'id="test-invalid"' in unfinished and "required" in unfinished


def test_the_server_page_shows_usage_per_tool_and_the_apis_status_word(client: Client) -> None:
    MCPServer.objects.create(id="time", name="time", transport="stdio", command="uvx", status="degraded")
    thread = Thread.objects.create(id="T-1", mcp_id="time", user_input="what time is it")
    from django.utils import timezone

    for sequence, (ms, status) in enumerate([(12.0, "complete"), (48.0, "error")]):
        ExecutionStep.objects.create(
            thread=thread,
            sequence=sequence,
            timestamp=timezone.now(),
            step_type="tool_result",
            details={
                "mcp_id": "time",
                "tool": "get_current_time",
                **({"error": "zone?"} if status == "error" else {}),
            },
            status=status,
            duration_ms=ms,
        )
    page = client.get("/servers/time?window=1h").content.decode()
    row = page.split('<tr data-tool="get_current_time">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">2</td>' in row and ">1</span>" in row and "30.0 ms" in row and "zone?" in row
    assert 'aria-current="true">1h</a>' in page
    word = client.get("/api/mcps/time").json()["status"]
    assert f'class="status status-{word}" title=' in page and word == "degraded"
    assert "what time is it" in page  # a thread is named by its input, not its id


def test_a_refusal_is_a_page_that_says_why(viewer: Any) -> None:
    answer = signed_in(viewer).get("/servers/new")
    assert answer.status_code == 403
    assert "Your role does not allow managing servers." in answer.content.decode()
    assert 'class="site-nav"' in answer.content.decode() or "<nav" in answer.content.decode()

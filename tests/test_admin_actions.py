"""Operator actions in the admin: export selected logs, reconnect servers, view on site."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from logs.models import LogEntry
from mcps.models import MCPServer
from tests.conftest import event, store
from threads.models import Thread

pytestmark = pytest.mark.django_db


def _run(client: Client, url: str, action: str, ids: list[str]) -> Any:
    return client.post(url, {"action": action, "_selected_action": ids}, follow=True)


def test_it_exports_the_selected_logs_as_csv(admin_client: Client) -> None:
    store(
        event("log", level="ERROR", message="disk full"),
        event("log", 1, level="INFO", message="all good"),
        mcp_id="srv-alpha",
    )
    chosen = LogEntry.objects.get(message="disk full")
    response = admin_client.post(
        "/admin/logs/logentry/", {"action": "export_csv", "_selected_action": [chosen.pk]}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response).decode()
    assert body.splitlines()[0].startswith("id,timestamp,level")
    assert "disk full" in body and "all good" not in body


def test_it_says_why_a_reconnect_cannot_happen(admin_client: Client) -> None:
    MCPServer.objects.create(id="time", name="time", transport="stdio", command="uvx")
    MCPServer.objects.create(id="pusher", name="pusher")
    page = _run(admin_client, "/admin/mcps/mcpserver/", "reconnect", ["time", "pusher"])
    said = [str(m) for m in page.context["messages"]]  # no gateway runs in the tests: say so
    assert said[0].startswith("time: the MCP gateway is not running")
    assert said[1] == "Skipped 1 server(s) that only push events."


def test_the_admin_links_rows_to_their_pages(admin_client: Client) -> None:
    store(event("thread.started", thread_id="T-adm"), mcp_id="srv-alpha")
    change = admin_client.get("/admin/threads/thread/T-adm/change/").content.decode()
    assert "View on site" in change
    assert Thread.objects.get(id="T-adm").get_absolute_url() == "/threads/T-adm"
    servers = admin_client.get("/admin/mcps/mcpserver/").content.decode()
    assert "column-tool_count" in servers

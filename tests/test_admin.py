"""The admin console lists every model with its columns, filters and search."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event

pytestmark = pytest.mark.django_db

PAGES = [
    "mcps/mcpserver",
    "mcps/ingestkey",
    "mcps/tool",
    "mcps/resource",
    "mcps/prompt",
    "mcps/healthcheck",
    "threads/thread",
    "threads/executionstep",
    "threads/llmmessage",
    "threads/threadevent",
    "logs/logentry",
    "audit/permissionevent",
]


@pytest.fixture
def alice(client: Client) -> Client:
    User.objects.create_superuser("alice", "alice@example.com", "pw-alice-123")
    client.login(username="alice", password="pw-alice-123")
    return client


@pytest.mark.parametrize("page", PAGES)
def test_it_lists_searches_and_shows_each_model(alice: Client, ingest_key: str, page: str) -> None:
    ingest(
        [
            event("thread.started"),
            event("thread.step"),
            event("thread.message"),
            event("log", thread_id="T-1"),
            event("permission.check"),
        ],
        Source(mcp_id="srv-alpha"),
    )
    assert alice.get(f"/admin/{page}/").status_code == 200
    assert alice.get(f"/admin/{page}/", {"q": "T-1"}).status_code == 200


def test_it_shows_a_thread_with_its_steps_and_transcript(alice: Client, ingest_key: str) -> None:
    ingest(
        [
            event("thread.started"),
            event("thread.step", description="ran git log"),
            event("thread.message", content="what changed?"),
        ],
        Source(mcp_id="srv-alpha"),
    )
    page = alice.get("/admin/threads/thread/T-1/change/").content.decode()
    assert "ran git log" in page and "what changed?" in page


def test_it_revokes_ingest_keys_from_the_admin(alice: Client, ingest_key: str) -> None:
    from mcps.models import IngestKey

    key = IngestKey.objects.get()
    alice.post("/admin/mcps/ingestkey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_it_keeps_strangers_out_of_the_admin(anonymous_client: Client) -> None:
    assert anonymous_client.get("/admin/threads/thread/").status_code == 302


def test_it_registers_a_stdio_server_from_the_admin(alice: Client) -> None:
    from mcps.models import MCPServer

    response = alice.post(
        "/admin/mcps/mcpserver/add/",
        {
            "id": "time",
            "name": "time",
            "enabled": "on",
            "source": "admin",
            "transport": "stdio",
            "command": "uvx",
            "args": '["mcp-server-time"]',
            "env": "{}",
            "cwd": "",
            "url": "",
            "headers": "{}",
            "tools-TOTAL_FORMS": "0",
            "tools-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert MCPServer.objects.get(id="time").args == ["mcp-server-time"]


def test_the_admin_refuses_a_stdio_server_without_a_command(alice: Client) -> None:
    response = alice.post(
        "/admin/mcps/mcpserver/add/",
        {
            "id": "bad",
            "name": "bad",
            "source": "admin",
            "transport": "stdio",
            "args": "[]",
            "env": "{}",
            "headers": "{}",
            "tools-TOTAL_FORMS": "0",
            "tools-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "required for a stdio server" in response.content.decode()

"""Client sessions group threads: recorded from the threads that name them, listed per team,
ended by their client; and calls are filed under the server that answered them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from mcps.models import MCPServer
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event, signed_in, team
from tests.conftest import result_ids as ids
from threads.models import Session

pytestmark = pytest.mark.django_db

MCP_CONTEXT = {"via": "/mcp", "principal": "olga", "client": {"name": "claude-code", "version": "2.1"}}


def push(*events: dict[str, Any], team_slug: str | None = "alpha") -> None:
    source = Source(mcp_id=None, team_id=team(team_slug).id if team_slug else None)
    result = ingest(list(events), source)
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts


def call_thread(
    seconds: float, thread_id: str, session: str, *, failed: bool = False, **fields: Any
) -> list[Any]:
    """A routed call as the /mcp recorder reports it: a thread on `time` in `session`."""
    return [
        event(
            "thread.started",
            seconds,
            thread_id=thread_id,
            mcp_id=fields.pop("mcp_id", "time"),
            session_id=session,
            user_input="time__get_current_time",
            execution_context=MCP_CONTEXT,
            **fields,
        ),
        event("thread.step", seconds, thread_id=thread_id, sequence=0, step_type="tool_call"),
        event(
            "thread.step",
            seconds + 0.1,
            thread_id=thread_id,
            sequence=1,
            step_type="tool_result",
            status="error" if failed else "complete",
        ),
        event("thread.ended", seconds + 0.1, thread_id=thread_id, status="error" if failed else "complete"),
    ]


@pytest.fixture
def sessions() -> None:
    """S-a (alpha, two calls, one failed) and S-b (beta, one call)."""
    MCPServer.objects.create(id="time", name="time")
    push(*call_thread(1, "call-1", "S-a"), *call_thread(5, "call-2", "S-a", failed=True))
    push(*call_thread(3, "call-3", "S-b"), team_slug="beta")


def test_threads_naming_a_session_record_it_once_with_who_it_is(sessions: None) -> None:
    session = Session.objects.get(id="S-a")
    assert (session.via, session.principal, session.client) == ("/mcp", "olga", MCP_CONTEXT["client"])
    assert session.team == team("alpha") and session.ended_at is None
    assert session.last_seen_at > session.started_at
    assert Session.objects.count() == 2


def test_sessions_are_listed_per_team_with_their_threads_and_failures(
    client: Client, operator: User, outsider: User, sessions: None
) -> None:
    rows = client.get("/api/sessions").json()["results"]
    assert [(r["id"], r["thread_count"], r["error_count"]) for r in rows] == [("S-b", 1, 0), ("S-a", 2, 1)]
    assert ids(signed_in(operator).get("/api/sessions")) == ["S-a"]
    assert ids(signed_in(outsider).get("/api/sessions")) == ["S-b"]
    detail = signed_in(operator).get("/api/sessions/S-a").json()
    assert [t["id"] for t in detail["threads"]] == ["call-2", "call-1"]
    assert detail["threads"][0]["session_id"] == "S-a" and detail["threads"][0]["status"] == "error"
    assert detail["via"] == "/mcp" and detail["threads_next"] is None
    assert signed_in(outsider).get("/api/sessions/S-a").status_code == 404
    assert ids(client.get("/api/threads?session=S-a")) == ["call-2", "call-1"]


def test_a_session_ends_when_its_client_ends_it_and_only_its_own_team_can(
    client: Client, sessions: None
) -> None:
    push(event("session.ended", 9, session_id="S-a"), team_slug="beta")  # not beta's to end
    assert Session.objects.get(id="S-a").ended_at is None
    push(event("session.ended", 9, session_id="S-a"))
    assert Session.objects.get(id="S-a").ended_at is not None
    assert ids(client.get("/api/sessions?open=true")) == ["S-b"]
    assert ids(client.get("/api/sessions?open=false")) == ["S-a"]


def test_the_session_pages_list_sessions_and_a_sessions_threads(operator: User, sessions: None) -> None:
    browser = signed_in(operator)
    listing = browser.get("/sessions").content.decode()
    assert "S-a" in listing and "S-b" not in listing and "claude-code" in listing
    page = browser.get("/sessions/S-a").content.decode()
    assert "call-1" in page and "call-2" in page and "1 failed" in page
    assert browser.get("/sessions/S-b").status_code == 404
    inspector = browser.get("/threads/call-1").content.decode()
    assert 'href="/sessions/S-a"' in inspector


def test_a_server_page_lists_the_threads_and_calls_filed_under_it(client: Client, sessions: None) -> None:
    page = client.get("/servers/time").content.decode()
    assert "No thread on this server yet" not in page
    assert "call-1" in page and "call-2" in page
    calls = page.split('id="calls"')[1]
    assert calls.count("status-error") == 1 and calls.count("status-complete") == 2
    assert ids(client.get("/api/threads?mcp=time")) == ["call-2", "call-3", "call-1"]


def test_graphql_finds_a_sessions_threads_and_a_servers(operator: User, sessions: None) -> None:
    import json

    text = """query ($session: ID!) {
      bySession: threads(filters: {session: $session}) { results { id sessionId } }
      byServer: threads(filters: {mcps: ["time"]}) { results { id } }
    }"""
    body = (
        signed_in(operator)
        .post(
            "/graphql",
            json.dumps({"query": text, "variables": {"session": "S-a"}}),
            content_type="application/json",
        )
        .json()
    )
    assert "errors" not in body, body
    assert sorted(r["id"] for r in body["data"]["bySession"]["results"]) == ["call-1", "call-2"]
    assert {r["sessionId"] for r in body["data"]["bySession"]["results"]} == {"S-a"}
    assert sorted(r["id"] for r in body["data"]["byServer"]["results"]) == [
        "call-1",
        "call-2",
    ]  # alpha's only

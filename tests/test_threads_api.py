"""GET /api/threads and a thread's detail, timeline, transcript and children."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from mcps.models import MCPServer
from tests.conftest import at, event, store
from tests.conftest import result_ids as ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree() -> None:
    """root-a (alpha, complete) with children a1 (running) and a2 (error); root-b (beta, running)."""
    MCPServer.objects.create(id="srv-alpha", name="alpha")
    MCPServer.objects.create(id="srv-beta", name="beta")
    store(
        event(
            "thread.started", 1, thread_id="root-a", mcp_id="srv-alpha", user_input="summarise the repository"
        ),
        event(
            "thread.started",
            2,
            thread_id="a1",
            parent_id="root-a",
            mcp_id="srv-alpha",
            user_input="read files",
        ),
        event(
            "thread.started",
            3,
            thread_id="a2",
            parent_id="root-a",
            mcp_id="srv-alpha",
            user_input="run tests",
        ),
        event("thread.started", 4, thread_id="root-b", mcp_id="srv-beta", user_input="deploy the service"),
        event("thread.ended", 5, thread_id="a2", status="error"),
        event("thread.ended", 6, thread_id="root-a", status="complete"),
    )


def test_it_lists_threads_newest_first(client: APIClient, tree: None) -> None:
    assert ids(client.get("/api/threads")) == ["root-b", "a2", "a1", "root-a"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=running", ["root-b", "a1"]),
        ("status=error,complete", ["a2", "root-a"]),
        ("mcp=srv-beta", ["root-b"]),
        ("parent=root-a", ["a2", "a1"]),
        ("root=true", ["root-b", "root-a"]),
        ("root=false", ["a2", "a1"]),
        (f"from={at(2)}&to={at(3)}", ["a2", "a1"]),
        ("search=repository", ["root-a"]),
        ("search=a1", ["a1"]),
        ("search=run or deploy", ["root-b", "a2"]),
        ("root=false&status=running&mcp=srv-alpha", ["a1"]),
    ],
)
def test_it_filters_threads(client: APIClient, tree: None, query: str, expected: list[str]) -> None:
    assert ids(client.get(f"/api/threads?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=sleeping", "status"), ("root=maybe", "root"), ("to=noon", "to"), ("colour=red", "colour")],
)
def test_it_answers_400_naming_a_bad_thread_filter(client: APIClient, query: str, field: str) -> None:
    response = client.get(f"/api/threads?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_it_pages_threads(client: APIClient, tree: None) -> None:
    first = client.get("/api/threads?limit=3").json()
    second = client.get(first["next"]).json()
    assert [r["id"] for r in first["results"] + second["results"]] == ["root-b", "a2", "a1", "root-a"]
    assert second["next"] is None


def test_it_serves_timeline_transcript_and_children(client: APIClient, tree: None) -> None:
    store(
        event(
            "thread.step", 7, thread_id="root-a", sequence=2, step_type="tool_result", description="3 files"
        ),
        event(
            "thread.step", 6, thread_id="root-a", sequence=1, step_type="tool_call", description="list files"
        ),
        event("thread.message", 8, id="m1", thread_id="root-a", role="user", content="hi"),
        event("thread.message", 9, id="m2", thread_id="root-a", role="agent", content="hello"),
    )
    timeline = client.get("/api/threads/root-a/timeline").json()["results"]
    assert [(s["sequence"], s["description"]) for s in timeline] == [(1, "list files"), (2, "3 files")]
    transcript = client.get("/api/threads/root-a/transcript").json()
    assert [(m["role"], m["content"]) for m in transcript] == [("user", "hi"), ("agent", "hello")]
    children = client.get("/api/threads/root-a/children").json()
    assert [(c["id"], c["status"]) for c in children] == [("a1", "running"), ("a2", "error")]
    detail = client.get("/api/threads/root-a").json()
    assert detail["thread"]["status"] == "complete" and detail["children"] == ["a1", "a2"]


@pytest.mark.parametrize("suffix", ["", "/timeline", "/transcript", "/children"])
def test_it_404s_an_unknown_thread(client: APIClient, suffix: str) -> None:
    assert client.get(f"/api/threads/nope{suffix}").status_code == 404

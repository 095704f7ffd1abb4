"""GET /api/search: one query across threads, logs, transcripts, steps, permission
checks, tools, directives and knowledge; typed, ranked or time-ordered."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from automations.models import Directive, KnowledgeEntry
from mcps.models import MCPServer, Tool
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus() -> None:
    server = MCPServer.objects.create(id="srv-git", name="git")
    Tool.objects.create(server=server, name="rollback", description="Undo the last deployment")
    Tool.objects.create(server=server, name="git_log", description="Show commits")
    Directive.objects.create(
        name="rollback-on-error",
        description="Roll back a deployment that errors",
        source="name: x\nsteps: []",
    )
    KnowledgeEntry.objects.create(
        title="Deployment rollbacks", content="Rollback within 5 minutes of an error."
    )
    result = ingest(
        [
            event("thread.started", 1, thread_id="T-deploy", user_input="deployment of the payments service"),
            event(
                "thread.step", 2, thread_id="T-deploy", sequence=1, description="start deployment to staging"
            ),
            event(
                "thread.message",
                3,
                id="m1",
                thread_id="T-deploy",
                role="agent",
                content="The deployment failed",
            ),
            event("log", 4, id="l1", message="deployment failed: image missing", level="ERROR"),
            event("log", 5, id="l2", message="cache warmed", level="INFO"),
            event(
                "permission.check",
                6,
                id="p1",
                thread_id="T-deploy",
                resource="deployment/production",
                granted=False,
                reason="deployment outside the change window",
            ),
        ],
        Source(mcp_id="srv-git"),
    )
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts


def found(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(hit["kind"], hit["id"]) for hit in body["results"]}


def test_it_finds_every_kind_with_one_query(client: APIClient, corpus: None) -> None:
    body = client.get("/api/search?q=deployment").json()
    assert found(body) == {
        ("thread", "T-deploy"),
        ("step", "T-deploy#1"),
        ("message", "m1"),
        ("log", "l1"),
        ("permission", "p1"),
        ("tool", "srv-git/rollback"),
        ("directive", "rollback-on-error"),
        ("knowledge", "deployment-rollbacks"),
    }
    assert body["counts"]["log"] == 1 and body["counts"]["tool"] == 1
    assert all(hit["url"].startswith("/api/") for hit in body["results"])


def test_it_narrows_to_the_asked_kinds(client: APIClient, corpus: None) -> None:
    body = client.get("/api/search?q=deployment&kinds=log,tool").json()
    assert found(body) == {("log", "l1"), ("tool", "srv-git/rollback")}
    assert set(body["counts"]) == {"log", "tool"}


def test_it_orders_by_time_when_asked(client: APIClient, corpus: None) -> None:
    body = client.get("/api/search?q=deployment&kinds=thread,step,message,log,permission&order=time").json()
    assert [hit["id"] for hit in body["results"]] == ["p1", "l1", "m1", "T-deploy#1", "T-deploy"]


def test_it_ranks_an_exact_name_first(client: APIClient, corpus: None) -> None:
    body = client.get("/api/search?q=rollback&kinds=tool,directive,knowledge").json()
    assert body["results"][0]["id"] == "srv-git/rollback"
    assert body["results"][0]["rank"] >= body["results"][-1]["rank"]


def test_it_honours_websearch_syntax_across_kinds(client: APIClient, corpus: None) -> None:
    body = client.get("/api/search?q=deployment -failed&kinds=log,message,step").json()
    assert found(body) == {("step", "T-deploy#1")}


def test_it_limits_the_results_and_reports_full_counts(client: APIClient) -> None:
    ingest([event("log", i, id=f"l{i}", message=f"retry {i}") for i in range(30)], Source(mcp_id="srv-x"))
    body = client.get("/api/search?q=retry&kinds=log&limit=5").json()
    assert len(body["results"]) == 5 and body["counts"]["log"] == 30 and body["more"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "q"),
        ("q=%20", "q"),
        ("q=x&kinds=emails", "kinds"),
        ("q=x&order=best", "order"),
        ("q=x&limit=500", "limit"),
        ("q=x&page=2", "page"),
    ],
)
def test_it_answers_400_naming_a_bad_search_parameter(client: APIClient, query: str, field: str) -> None:
    response = client.get(f"/api/search?{query}")
    assert response.status_code == 400
    assert field in response.json()

"""GET /api/permissions/audit: every permission check, filtered, and one thread's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import event, store
from tests.conftest import result_ids as ids

pytestmark = pytest.mark.django_db


def check(id_: str, hours_ago: float, **fields: Any) -> dict[str, Any]:
    when = (timezone.now() - timedelta(hours=hours_ago)).isoformat()
    return event("permission.check", id=id_, timestamp=when, **fields)


@pytest.fixture
def checks() -> None:
    store(
        event("thread.started", thread_id="T-1"),
        event("thread.started", thread_id="T-2"),
        check("p1", 30, granted=False, user_id="alice", resource="git/push", action="write"),
        check("p2", 5, granted=False, user_id="bob", resource="git/push", action="write"),
        check("p3", 4, granted=True, user_id="alice", resource="git/log", action="read"),
        check(
            "p4",
            3,
            thread_id="T-2",
            granted=True,
            user_id="bob",
            resource="db/admin",
            action="execute",
            escalation_detected=True,
        ),
        check("p5", 1, thread_id="T-2", granted=False, user_id="carol", resource="db/drop", action="execute"),
        mcp_id="srv-alpha",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["p5", "p4", "p3", "p2", "p1"]),
        ("granted=false&since=24h", ["p5", "p2"]),
        ("user=alice", ["p3", "p1"]),
        ("user=bob,carol", ["p5", "p4", "p2"]),
        ("granted=true", ["p4", "p3"]),
        ("resource=git/push", ["p2", "p1"]),
        ("resource_prefix=db/", ["p5", "p4"]),
        ("action=execute", ["p5", "p4"]),
        ("severity=critical", ["p4"]),
        ("severity=warn", ["p5", "p2", "p1"]),
        ("escalation=true", ["p4"]),
        ("thread=T-2", ["p5", "p4"]),
        ("granted=false&action=write&user=alice", ["p1"]),
    ],
)
def test_it_filters_the_audit_trail(client: APIClient, checks: None, query: str, expected: list[str]) -> None:
    assert ids(client.get(f"/api/permissions/audit?{query}")) == expected


def test_it_lists_one_threads_checks_with_the_same_filters(client: APIClient, checks: None) -> None:
    assert ids(client.get("/api/permissions/audit/T-2")) == ["p5", "p4"]
    assert ids(client.get("/api/permissions/audit/T-2?granted=false")) == ["p5"]
    assert client.get("/api/permissions/audit/nope").status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("granted=perhaps", "granted"),
        ("severity=huge", "severity"),
        ("since=yesterday", "since"),
        ("who=me", "who"),
    ],
)
def test_it_answers_400_naming_a_bad_audit_filter(client: APIClient, query: str, field: str) -> None:
    response = client.get(f"/api/permissions/audit?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_it_reports_each_checks_reasons(client: APIClient, checks: None) -> None:
    row = client.get("/api/permissions/audit?escalation=true").json()["results"][0]
    assert row["severity"] == "critical" and row["escalation_detected"] is True
    assert set(row) >= {"rules_checked", "inheritance_chain", "reason", "thread_id"}

"""Two teams' data, shared by the access and isolation tests (a pytest plugin of conftest).

Personas (tests/conftest.py): victor (viewer), olga (operator) and ada (admin) in team
alpha; bob (viewer) in team beta; the superuser root. Rows of team alpha come from an
alpha ingest key, rows of beta from a beta key, and one thread has no team at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from mcps.models import IngestKey
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event, post_batch, team


def push(team_slug: str | None, *events: dict[str, Any]) -> None:
    """Store `events` as pushed by an ingest key of `team_slug`."""
    team_id = team(team_slug).pk if team_slug else None
    result = ingest(list(events), Source(mcp_id="srv-alpha", team_id=team_id))
    assert result.count("rejected") == 0, result.as_dict()


def a_thread(thread_id: str, word: str) -> list[dict[str, Any]]:
    """A thread with a step, a message, a log and a permission check, all saying `word`."""
    return [
        event("thread.started", thread_id=thread_id, user_input=f"{word} input"),
        event("thread.step", 1, thread_id=thread_id, description=f"{word} step"),
        event("thread.message", 2, thread_id=thread_id, content=f"{word} message"),
        event("log", 3, id=f"log-{thread_id}", thread_id=thread_id, message=f"{word} log"),
        event("permission.check", 4, id=f"check-{thread_id}", thread_id=thread_id, resource=f"{word}/x"),
    ]


def push_two_teams() -> None:
    """T-a of alpha, T-b of beta, T-none of no team; a threadless log of each team."""
    push("alpha", *a_thread("T-a", "apple"), event("log", 5, id="free-a", message="apple alone"))
    push("beta", *a_thread("T-b", "banana"), event("log", 5, id="free-b", message="banana alone"))
    push(None, *a_thread("T-none", "nothing"))


@pytest.fixture
def two_teams(db: None) -> None:
    """T-a of alpha, T-b of beta, T-none of no team; a threadless log of each team."""
    push_two_teams()


@pytest.fixture
def two_teams_committed(transactional_db: None, viewer: User) -> None:
    """`two_teams`, committed for the ASGI application's own connection, and victor."""
    push_two_teams()


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


async def send(key: str, *events: dict[str, Any]) -> None:
    response = await post_batch({"events": [{"mcp_id": "srv-alpha", **e} for e in events]}, key)
    assert response.status_code == 200 and response.json()["accepted"] == len(events), response.json()


def team_keys() -> tuple[str, str]:
    """Raw ingest keys of team alpha and team beta, bound to no server."""
    return (
        IngestKey.objects.issue("alpha-key", team=team("alpha"))[1],
        IngestKey.objects.issue("beta-key", team=team("beta"))[1],
    )

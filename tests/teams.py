"""Two teams' data, shared by the access and isolation tests (a pytest plugin of conftest).

Personas (tests/conftest.py): victor (viewer), olga (operator) and ada (admin) in team
alpha; bob (viewer) in team beta; the superuser root. Rows of team alpha come from an
alpha ingest key, rows of beta from a beta key, and one thread has no team at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
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
    """A thread in a session, with a step, a message, a log and a permission check, all saying `word`."""
    return [
        event(
            "thread.started",
            thread_id=thread_id,
            user_input=f"{word} input",
            session_id=f"S-{thread_id}",
            execution_context={"via": "sdk", "principal": f"{word} agent"},
        ),
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


SUMMARY = """
name: summary
inputs:
  hours: {type: number, default: 48}
permissions: [read:threads, read:logs, read:permissions]
steps:
  - script: generate_summary
    inputs: {window_hours: "{{ inputs.hours }}"}
"""
LEARN = """
name: learn
description: learns
permissions: [read:logs]
steps:
  - script: generate_summary
"""


def runs_and_knowledge() -> dict[str, Any]:
    """A run, a knowledge entry and a notification channel (with a delivery) of each team,
    a system run, one entry of no team and one shared: alpha's say `apple`, beta's
    `banana`, the system's `nothing` (their ids and slugs do not: alpha-entry, beta-entry,
    system-entry)."""
    from automations.models import Directive, DirectiveExecution, KnowledgeEntry, StepRun

    learn = Directive.objects.upsert_from_yaml(LEARN)
    made: dict[str, Any] = {}
    for name, owner, word in (
        ("alpha", team("alpha"), "apple"),
        ("beta", team("beta"), "banana"),
        ("system", None, "nothing"),
    ):
        run = DirectiveExecution.objects.create(
            directive=learn,
            directive_name="learn",
            status="completed",
            team=owner,
            read_teams=[owner.pk] if owner else None,
            inputs={"about": f"{word} input"},
            result={"summary": f"{word} result"},
            error=f"{word} error",
        )
        StepRun.objects.create(
            execution=run, sequence=1, path="steps[0]", kind="script", output={"seen": f"{word} output"}
        )
        KnowledgeEntry.objects.create(
            slug=f"{name}-entry",
            title=f"{word.title()} pattern",
            content=f"{word} log line copied as an example",
            team=owner,
            source_directive=learn,
        )
        made[name] = run
    KnowledgeEntry.objects.create(slug="shared-tip", title="Shared tip", content="restart it", shared=True)
    from notifications.models import Channel, Delivery

    for name, owner, word in (("alpha", team("alpha"), "apple"), ("beta", team("beta"), "banana")):
        channel = Channel.objects.create(
            name=f"{word} alerts", team=owner, targets=[f"json://{word}.test/hook"]
        )
        Delivery.objects.create(channel=channel, purpose="test", title=f"{word} test message", body=word)
        made[f"{name}-channel"] = channel
    return made


@pytest.fixture
def two_teams_everywhere(two_teams: None) -> dict[str, Any]:
    """`two_teams`, and each team's directive run and knowledge (`runs_and_knowledge`)."""
    return runs_and_knowledge()


def content(response: Any) -> bytes:
    """A test client response's whole body, a streamed (sync or async) export's included."""
    if not response.streaming:
        return bytes(response.content)
    if response.is_async:

        async def read() -> bytes:
            return b"".join([chunk async for chunk in response.streaming_content])

        return async_to_sync(read)()
    return b"".join(response.streaming_content)

"""Ingest writes only its own team's threads: JSON, OTLP, the /mcp recorder's batcher.

A thread belongs to the team of the key that created it. An event naming a thread of
another team (a thread of no team counts as one) is rejected, alone, with its reason;
nothing of it is stored or sent live. Mission Control's own writers (a server's tailed
log files, the maintenance scripts) are the exception: they may name any thread.

Data: `two_teams` (tests/teams.py): T-a of alpha, T-b of beta, T-none of no team.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from audit.models import PermissionEvent
from logs.models import LogEntry
from missioncontrol.ingest.batcher import EventBatcher
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import Socket, event, post_batch, signed_in, team
from tests.teams import ids, push, team_keys
from tests.test_otlp_http import agent_trace, pb_span, post, thread_id, traces
from threads.models import ExecutionStep, LLMMessage, Thread, ThreadEvent

pytestmark = pytest.mark.django_db


def pushed(team_slug: str | None, *events: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdicts of `events` pushed by a key of `team_slug`."""
    team_id = team(team_slug).pk if team_slug else None
    return ingest(list(events), Source(mcp_id="srv-alpha", team_id=team_id)).as_dict()["results"]


def rejected_for(thread: str) -> dict[str, str]:
    return {
        "status": "rejected",
        "field": "thread_id",
        "reason": f"thread {thread!r} belongs to another team",
    }


def test_another_teams_key_cannot_add_to_a_thread_or_end_it(two_teams: None) -> None:
    verdicts = pushed(
        "beta",
        event("thread.step", 10, thread_id="T-a", sequence=9, description="injected step"),
        event("thread.message", 11, thread_id="T-a", content="injected message"),
        event("log", 12, thread_id="T-a", message="injected log"),
        event("permission.check", 13, thread_id="T-a", resource="injected/x"),
        event("thread.ended", 14, thread_id="T-a", status="error"),
        event("thread.step", 15, thread_id="T-b", sequence=9, description="beta's own step"),
    )
    assert [{k: v[k] for k in ("status", "field", "reason") if k in v} for v in verdicts] == [
        *[rejected_for("T-a")] * 5,
        {"status": "accepted"},
    ]
    thread = Thread.objects.get(id="T-a")
    assert thread.status == "running" and thread.ended_at is None
    assert not ExecutionStep.objects.filter(thread_id="T-a", description="injected step").exists()
    assert not LLMMessage.objects.filter(content="injected message").exists()
    assert not LogEntry.objects.filter(message="injected log").exists()
    assert not PermissionEvent.objects.filter(resource="injected/x").exists()
    assert ExecutionStep.objects.filter(thread_id="T-b", description="beta's own step").exists()


def test_a_key_cannot_squat_a_thread_another_team_started(two_teams: None, outsider: User) -> None:
    verdicts = pushed("alpha", event("thread.started", 9, thread_id="T-b", user_input="alpha's secret"))
    assert verdicts[0]["status"] == "rejected" and verdicts[0]["field"] == "thread_id"
    t_b = Thread.objects.select_related("team").get(id="T-b")
    assert (t_b.team.slug, t_b.user_input) == ("beta", "banana input")
    assert "alpha's secret" not in signed_in(outsider).get("/api/threads/T-b").content.decode()


def test_keys_of_no_team_and_threads_of_no_team_do_not_mix(two_teams: None) -> None:
    assert pushed(None, event("thread.step", 9, thread_id="T-a", sequence=7))[0]["status"] == "rejected"
    assert pushed("alpha", event("thread.ended", 9, thread_id="T-none"))[0]["status"] == "rejected"
    assert pushed(None, event("thread.step", 9, thread_id="T-none", sequence=7))[0]["status"] == "accepted"
    assert Thread.objects.get(id="T-none").status == "running"


def test_a_rejected_events_id_is_free_for_the_rightful_team(two_teams: None) -> None:
    step = event("thread.step", 9, id="step-x", thread_id="T-a", sequence=5, description="alpha's")
    assert pushed("beta", step)[0]["status"] == "rejected"
    assert not ThreadEvent.objects.filter(id="step-x").exists()
    assert pushed("alpha", step)[0]["status"] == "accepted"
    assert ExecutionStep.objects.get(thread_id="T-a", sequence=5).description == "alpha's"


def test_the_first_team_to_use_a_thread_id_keeps_it(viewer: User, outsider: User) -> None:
    # beta names T-x first (a step before its start): the thread is beta's from then on.
    assert pushed("beta", event("thread.step", 1, thread_id="T-x", sequence=1))[0]["status"] == "accepted"
    assert pushed("alpha", event("thread.started", 2, thread_id="T-x"))[0]["status"] == "rejected"
    assert signed_in(viewer).get("/api/threads/T-x").status_code == 404
    assert signed_in(outsider).get("/api/threads/T-x").status_code == 200


def test_a_log_stays_its_teams_whatever_thread_it_names_later(viewer: User, outsider: User) -> None:
    # beta logs about T-later before alpha starts it: alpha never reads beta's line.
    push("beta", event("log", 1, id="early-b", thread_id="T-later", message="banana early"))
    push(
        "alpha", event("thread.started", 2, thread_id="T-later"), event("log", 3, id="a", thread_id="T-later")
    )
    assert ids(signed_in(viewer).get("/api/logs?threads=T-later")) == {"a"}
    assert ids(signed_in(outsider).get("/api/logs?threads=T-later")) == {"early-b"}
    query = {"query": '{ thread(id: "T-later") { logs { id } } }'}
    data = signed_in(viewer).post("/graphql", query, "application/json").json()["data"]
    assert [log["id"] for log in data["thread"]["logs"]] == ["a"]


def test_mission_controls_own_writers_may_name_any_teams_thread(two_teams: None, viewer: User) -> None:
    # A server's log file tailed by Mission Control names the agent's thread: its team sees the line.
    result = ingest(
        [event("log", 9, id="tailed", thread_id="T-a", message="from the server's file")],
        Source(mcp_id="srv-alpha", system=True),
    )
    assert result.count("accepted") == 1
    assert "tailed" in ids(signed_in(viewer).get("/api/logs?threads=T-a"))


def test_writing_a_thread_is_checked_in_the_statement_that_writes_it(two_teams: None) -> None:
    # Two teams racing to create one id: the loser's upsert finds the winner's row and
    # leaves it alone (and does not answer it as its own), whatever it read before.
    beta = team("beta").pk
    row = ("T-a", None, None, "beta's input", {}, Thread.objects.get(id="T-a").started_at, None)
    news = Thread.objects.record_news([row], {}, beta, own_team_only=True)
    assert news.teams.get("T-a", "not answered") != beta
    assert Thread.objects.get(id="T-a").user_input == "apple input"


# --- over HTTP: the JSON endpoint, OTLP, the /mcp recorder's batcher --------------------


@pytest.mark.django_db(transaction=True)
async def test_the_json_endpoint_answers_each_refused_event_and_sends_nothing_live(viewer: User) -> None:
    alpha_key, beta_key = await sync_to_async(team_keys)()
    await post_batch({"events": [event("thread.started", thread_id="T-a", mcp_id="srv-alpha")]}, alpha_key)
    async with Socket(user=viewer) as ws:
        await ws.subscribe("thread:T-a")
        body = {
            "events": [
                event("thread.step", 1, thread_id="T-a", sequence=3, mcp_id="srv-alpha"),
                event("thread.started", 2, thread_id="T-beta", mcp_id="srv-alpha"),
            ]
        }
        answer = (await post_batch(body, beta_key)).json()
        assert (answer["accepted"], answer["rejected"]) == (1, 1)
        assert answer["results"][0] == {
            "index": 0,
            "id": body["events"][0]["id"],
            "status": "rejected",
            "field": "thread_id",
            "reason": "thread 'T-a' belongs to another team",
        }
        assert await ws.nothing()


@pytest.mark.django_db(transaction=True)
async def test_otlp_spans_for_another_teams_trace_are_refused_in_partial_success() -> None:
    alpha_key, beta_key = await sync_to_async(team_keys)()
    assert (await post("/v1/traces", agent_trace().SerializeToString(), alpha_key)).status_code == 200
    before = await sync_to_async(lambda: list(ExecutionStep.objects.values_list("id", "status")))()
    # beta's spans of the same trace (the same thread), with span ids of their own.
    agent, tool = bytes.fromhex(f"{0xB1:016x}"), bytes.fromhex(f"{0xB2:016x}")
    theirs = traces(
        pb_span(agent, "invoke_agent spy", end=5, **{"gen_ai.operation.name": "invoke_agent"}),
        pb_span(tool, "execute_tool spy", agent, 1, 2, **{"gen_ai.tool.name": "spy"}),
    )
    response = await post("/v1/traces", theirs.SerializeToString(), beta_key)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2 and "belongs to another team" in partial.error_message
    assert await sync_to_async(lambda: list(ExecutionStep.objects.values_list("id", "status")))() == before
    owner = await Thread.objects.select_related("team").aget(id=thread_id())
    assert owner.team.slug == "alpha"


@pytest.mark.django_db(transaction=True)
async def test_the_batcher_stores_each_source_under_its_own_team() -> None:
    # The /mcp recorder hands its events to a batcher with the caller's team.
    await sync_to_async(push)("alpha", event("thread.started", thread_id="T-a"))
    beta = await sync_to_async(lambda: team("beta").pk)()
    batcher = EventBatcher("test calls")
    batcher.add(event("thread.step", 1, thread_id="T-a", sequence=1), source=Source(None, beta))
    batcher.add(event("thread.started", 2, thread_id="T-b2", mcp_id="srv-beta"), source=Source(None, beta))
    await batcher.close()
    assert not await ExecutionStep.objects.filter(thread_id="T-a").aexists()
    assert (await Thread.objects.select_related("team").aget(id="T-b2")).team.slug == "beta"

"""Directive runs and the knowledge base keep to their teams (automations.scope).

A person's run reads what they may see within their team, and its output is that
team's; a system run reads everything and its output is the admins', while each team
gets its own knowledge, computed from its own rows. Raw examples (log lines) never
reach another team. Alerts and run events go live only to those who may see them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from automations import engine, events
from automations.models import Directive, KnowledgeEntry
from automations.scope import SYSTEM, Scope, reading
from logs.models import LogEntry
from tests.conftest import BASE_TIME, Socket, ago, api_token, event, make_user, signed_in, team
from tests.mcp_servers import api
from tests.teams import SUMMARY, push
from threads.models import Thread

pytestmark = pytest.mark.django_db

CLUSTERS = """
name: clusters
permissions: [read:logs, write:knowledge]
steps:
  - script: analyze_error_clusters
"""
STALL = """
name: stall
inputs:
  thread_id: {type: string}
permissions: [read:threads, write:threads]
steps:
  - script: mark_thread_stalled
    inputs: {thread_id: "{{ inputs.thread_id }}", idle_seconds: 1}
"""
CLEANUP = """
name: cleanup
permissions: [write:logs]
steps:
  - script: cleanup_old_logs
    inputs: {max_age_days: 1}
"""


def recent(thread_id: str, word: str) -> list[dict[str, Any]]:
    """A thread of an hour ago with its log, and three ERROR lines of one shape, saying `word`."""
    started = event("thread.started", thread_id=thread_id, user_input=f"{word} input", timestamp=ago(3600))
    errors = [
        event("log", level="ERROR", message=f"{word} failed to open '/srv/{n}'", timestamp=ago(600 + n))
        for n in range(3)
    ]
    return [started, *errors]


@pytest.fixture
def recent_two_teams() -> None:
    push("alpha", *recent("T-a", "apple"))
    push("beta", *recent("T-b", "banana"))


def execute_as(user: User, name: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    response = signed_in(user).post(
        "/api/internal/execute", {"directive": name, "inputs": inputs or {}}, "application/json"
    )
    assert response.status_code == 202, response.content
    return signed_in(user).get(f"/api/internal/executions/{response.json()['id']}").json()


def test_a_persons_run_reads_only_what_they_may_see_and_is_their_teams(
    recent_two_teams: None, operator: User, viewer: User, outsider: User, admin: User
) -> None:
    Directive.objects.upsert_from_yaml(SUMMARY)
    run = execute_as(operator, "summary")
    assert run["status"] == "completed", run["error"]
    assert (run["started_by"], run["team"]) == ("olga", "alpha")
    # alpha's three ERROR lines, T-a and the run's own thread: nothing of beta's.
    assert run["result"]["logs"]["total"] == 3 and run["result"]["threads"]["total"] == 2
    assert signed_in(viewer).get(f"/api/internal/executions/{run['id']}").status_code == 200
    assert signed_in(outsider).get(f"/api/internal/executions/{run['id']}").status_code == 404
    assert signed_in(outsider).get(f"/executions/{run['id']}").status_code == 404
    # The run's own thread (its steps, their outputs) is alpha's too.
    thread = Thread.objects.select_related("team").get(id=run["thread_id"])
    assert thread.team.slug == "alpha"
    everything = engine.submit(Directive.objects.get(name="summary"), acting_for=SYSTEM, wait=True)
    assert everything.result["logs"]["total"] == 6 and everything.team_id is None
    assert signed_in(admin).get(f"/api/internal/executions/{everything.pk}").status_code == 200
    assert signed_in(viewer).get(f"/api/internal/executions/{everything.pk}").status_code == 404


def test_a_system_run_writes_each_teams_own_knowledge_and_no_team_reads_anothers_lines(
    recent_two_teams: None, viewer: User, outsider: User, admin: User
) -> None:
    engine.submit(Directive.objects.upsert_from_yaml(CLUSTERS), acting_for=SYSTEM, wait=True)
    entries = {(e.team.slug if e.team else None): e.content for e in KnowledgeEntry.objects.all()}
    assert set(entries) == {None, "alpha", "beta"}
    assert "apple failed" in entries["alpha"] and "banana" not in entries["alpha"]
    assert "banana failed" in entries["beta"] and "apple" not in entries["beta"]
    for reader, own, other in ((viewer, "apple", "banana"), (outsider, "banana", "apple")):
        listed = signed_in(reader).get("/api/internal/knowledge").content.decode()
        assert own in listed and other not in listed
        page = signed_in(reader).get("/knowledge").content.decode()
        assert other not in page.lower()
    everything = signed_in(admin).get("/api/internal/knowledge").content.decode()
    assert "apple" in everything and "banana" in everything


def test_a_persons_run_cannot_touch_another_teams_thread(recent_two_teams: None, operator: User) -> None:
    Directive.objects.upsert_from_yaml(STALL)
    run = execute_as(operator, "stall", {"thread_id": "T-b"})
    assert run["status"] == "failed" and "no thread 'T-b'" in run["error"]
    assert Thread.objects.get(id="T-b").stalled_at is None
    assert execute_as(operator, "stall", {"thread_id": "T-a"})["status"] == "completed"
    assert Thread.objects.get(id="T-a").stalled_at is not None


def test_an_operator_cannot_cancel_or_read_another_teams_run(two_teams_everywhere: dict[str, Any]) -> None:
    beta_operator = signed_in(make_user("bert", "operator", "beta"))
    alpha_run, beta_run = two_teams_everywhere["alpha"].pk, two_teams_everywhere["beta"].pk
    assert beta_operator.post(f"/api/internal/executions/{alpha_run}/cancel").status_code == 404
    assert beta_operator.post(f"/api/internal/executions/{beta_run}/cancel").status_code == 409  # finished


def test_a_persons_cleanup_deletes_only_their_teams_logs(
    two_teams: None, operator: User, time_machine: Any
) -> None:
    time_machine.move_to(BASE_TIME + timedelta(days=7))  # two_teams' logs are a week old
    Directive.objects.upsert_from_yaml(CLEANUP)
    assert execute_as(operator, "cleanup")["result"]["deleted"] == 2  # log-T-a and free-a
    assert set(LogEntry.objects.values_list("id", flat=True)) == {"log-T-b", "free-b", "log-T-none"}


def test_a_scope_narrowed_to_a_team_the_user_is_not_in_reads_nothing(viewer: User) -> None:
    assert Scope.for_user(viewer, team("beta").pk).teams == ()
    assert Scope.for_user(viewer, None).teams == (team("alpha").pk,)


# --- live ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_runs_events_and_an_alerts_go_live_only_to_those_who_may_see_them(
    two_teams_committed: None, outsider: User
) -> None:
    viewer = await User.objects.aget(username="victor")
    olga = await sync_to_async(lambda: api_token(_operator(), "alpha"))()
    await sync_to_async(Directive.objects.upsert_from_yaml)(SUMMARY)
    async with Socket(user=viewer) as alpha, Socket(user=outsider) as beta:
        await alpha.subscribe("global")
        await beta.subscribe("global")
        answer = await api("POST", "/api/internal/execute", {"directive": "summary"}, token=olga)
        assert answer.status_code == 202, answer.text
        statuses = [e["status"] for e in await alpha.events("global") if e["type"] == "directive.execution"]
        assert statuses[0] == "running"
        # About alpha's thread: alpha's; about no thread, from a system run: admins'.
        await sync_to_async(events.alert)("thread.stalled", "T-a is quiet", thread_id="T-a")
        await sync_to_async(_system_alert)()
        seen = []
        while not await alpha.nothing(0.5):
            seen += [e["type"] for e in await alpha.events("global")]
        assert "thread.stalled" in seen and "anomaly.detected" not in seen
        assert await beta.nothing()


def _operator() -> User:
    return make_user("olga", "operator", "alpha")


def _system_alert() -> None:
    with reading(SYSTEM):
        events.alert("anomaly.detected", "log error rate spike")


def test_an_alert_of_a_teams_run_goes_to_that_team() -> None:
    alpha = team("alpha").pk
    with reading(Scope((alpha,), alpha)):
        assert events._audience(events.make_alert("anomaly.detected", "spike"), {}) == [alpha]
    assert events._audience(events.make_alert("mcp.escalated", "down", mcp_id="time"), {}) is None
    assert events._audience(events.make_alert("anomaly.detected", "spike"), {}) == []  # the system's

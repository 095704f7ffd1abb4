"""Automations: cron schedules fired by the minute tick, event and alert triggers, once each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from automations import tasks, triggers
from automations.models import Automation, Directive, DirectiveExecution
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.live import Outbox, encode
from tests.conftest import event

# Triggers read the automations from a worker thread of their own: committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)

SUMMARY = "name: summary\npermissions: ['read:*']\ninputs:\n  hours: {type: number, default: 24}\nsteps:\n"
SUMMARY += "  - script: generate_summary\n    inputs: {window_hours: '{{ inputs.hours }}'}\n"


@pytest.fixture
def summary() -> Directive:
    return Directive.objects.upsert_from_yaml(SUMMARY)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def travel(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    monkeypatch.setattr(timezone, "now", lambda: at(when))


def publish(*events: dict[str, Any]) -> None:
    result = ingest(list(events), Source(mcp_id="agents"))
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts
    async_to_sync(result.outbox.send)()


def publish_raw(payload: dict[str, Any]) -> None:
    """An event on `global` as the gateway publishes mcp.status (no ingest)."""
    outbox = Outbox()
    outbox.add("global", encode(payload))
    async_to_sync(outbox.send)()


def test_a_cron_automation_fires_at_its_time_once(
    monkeypatch: pytest.MonkeyPatch, summary: Directive
) -> None:
    automation = Automation.objects.create(
        name="quarter-hourly",
        directive=summary,
        trigger="schedule",
        schedule="*/15 * * * *",
        inputs={"hours": "2"},
        created_at=at("2026-11-21T10:02:10"),
    )
    travel(monkeypatch, "2026-11-21T10:14:59")
    assert tasks.tick.apply().get() == []
    travel(monkeypatch, "2026-11-21T10:15:03")
    fired = tasks.tick.apply().get()
    travel(monkeypatch, "2026-11-21T10:15:40")
    assert tasks.tick.apply().get() == []  # a second tick in the same minute
    travel(monkeypatch, "2026-11-21T10:29:00")
    assert tasks.tick.apply().get() == []
    execution = DirectiveExecution.objects.get()
    assert fired == [execution.pk]
    assert (execution.triggered_by, execution.status, execution.inputs) == (
        "schedule",
        "completed",
        {"hours": 2},
    )
    assert execution.trigger_info == {
        "scheduled_for": "2026-11-21T10:15:00+00:00",
        "cron": "*/15 * * * *",
        "automation": "quarter-hourly",
    }
    automation.refresh_from_db()
    assert automation.last_executed_at == at("2026-11-21T10:15:03")
    assert [t.isoformat() for t in automation.next_runs(2, after=at("2026-11-21T10:15:03"))] == [
        "2026-11-21T10:30:00+00:00",
        "2026-11-21T10:45:00+00:00",
    ]


def test_a_cron_automation_made_after_its_minute_began_waits_for_the_next_one(
    monkeypatch: pytest.MonkeyPatch, summary: Directive
) -> None:
    Automation.objects.create(
        name="made mid-minute",
        directive=summary,
        trigger="schedule",
        schedule="*/15 * * * *",
        created_at=at("2026-11-21T10:00:30"),
    )
    travel(monkeypatch, "2026-11-21T10:00:45")
    assert tasks.tick.apply().get() == []  # 10:00 passed before it existed
    travel(monkeypatch, "2026-11-21T10:15:01")
    tasks.tick.apply().get()
    assert [e.trigger_info["scheduled_for"] for e in DirectiveExecution.objects.all()] == [
        "2026-11-21T10:15:00+00:00"
    ]


def test_two_ticks_racing_for_the_same_minute_fire_once(
    monkeypatch: pytest.MonkeyPatch, summary: Directive
) -> None:
    automation = Automation.objects.create(
        name="hourly",
        directive=summary,
        trigger="schedule",
        schedule="0 * * * *",
        created_at=at("2026-11-21T09:30:00"),
    )
    travel(monkeypatch, "2026-11-21T10:00:01")
    first = triggers.fire_due()
    # The other beat read the automation before this one stored last_executed_at.
    Automation.objects.filter(pk=automation.pk).update(last_executed_at=None)
    second = triggers.fire_due()
    assert len(first) == 1 and second == []
    assert DirectiveExecution.objects.count() == 1


def test_a_disabled_automation_does_not_fire(monkeypatch: pytest.MonkeyPatch, summary: Directive) -> None:
    Automation.objects.create(
        name="off", directive=summary, trigger="schedule", schedule="* * * * *", enabled=False
    )
    assert triggers.fire_due(timezone.now()) == []


def test_an_event_automation_fires_once_per_matching_event(summary: Directive) -> None:
    Automation.objects.create(
        name="on failure",
        directive=summary,
        trigger="event",
        event_type="thread.ended",
        filters={"status": "error"},
    )
    started = event("thread.started", 0, thread_id="agent-1")
    failed = event("thread.ended", 5, thread_id="agent-1", status="error")
    publish(started, failed)
    publish(event("thread.started", 0, thread_id="agent-2"), event("thread.ended", 5, thread_id="agent-2"))
    publish_raw(failed)  # the same event published again (say, by a second web process)
    execution = DirectiveExecution.objects.get()
    assert (execution.triggered_by, execution.status, execution.depth) == ("event", "completed", 0)
    assert execution.trigger_info["event"]["thread_id"] == "agent-1"
    assert execution.trigger_key == f"event:{failed['id']}"


def test_an_mcp_status_automation_fires_once_per_status_change(summary: Directive) -> None:
    Automation.objects.create(
        name="heal",
        directive=summary,
        trigger="event",
        event_type="mcp.status",
        filters={"status": "disconnected"},
    )
    down = {
        "type": "mcp.status",
        "mcp_id": "git",
        "status": "disconnected",
        "error": "EOF",
        "at": "2026-11-21T10:00:00",
    }
    publish_raw(down)
    publish_raw(down)  # the very same event published twice
    publish_raw({**down, "status": "connected", "at": "2026-11-21T10:00:05"})
    assert DirectiveExecution.objects.filter(triggered_by="event").count() == 1


def test_alert_automations_fire_on_escalations_and_anomalies(summary: Directive) -> None:
    on_any = Automation.objects.create(name="any alert", directive=summary, trigger="alert")
    on_anomaly = Automation.objects.create(
        name="anomalies", directive=summary, trigger="alert", event_type="anomaly.detected"
    )
    check = event("permission.check", 1, thread_id="agent-1", granted=False, escalation_detected=True)
    publish(event("thread.started", 0, thread_id="agent-1"), check)
    publish(event("permission.check", 2, thread_id="agent-1", granted=False))  # a denial, not an escalation
    triggers.publish_alert("anomaly.detected", {"id": "anomaly-1", "kind": "slow_threads", "count": 3})
    fired = sorted(DirectiveExecution.objects.values_list("automation__name", "trigger_info__event__type"))
    assert fired == [
        ("anomalies", "anomaly.detected"),
        ("any alert", "anomaly.detected"),
        ("any alert", "permission.escalation"),
    ]
    assert on_any.executions.filter(status="completed", triggered_by="alert").count() == 2
    assert on_anomaly.executions.get().trigger_info["event"]["kind"] == "slow_threads"


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        (
            {"trigger": "schedule", "schedule": "every hour"},
            {"schedule": ["'every hour' is not a cron expression"]},
        ),
        (
            {"trigger": "schedule", "schedule": "61 * * * *"},
            {"schedule": ["'61 * * * *' is not a cron expression"]},
        ),
        ({"trigger": "schedule"}, {"schedule": ["a schedule automation needs a cron expression"]}),
        ({"trigger": "event"}, {"event_type": ["an event automation needs an event type"]}),
        ({"trigger": "alert", "event_type": "thread.ended"}, {"event_type": ["an alert is one of"]}),
    ],
)
def test_it_names_what_is_wrong_with_an_automation(
    fields: dict[str, Any], problems: dict[str, list[str]]
) -> None:
    found = Automation(name="x", **fields).problems()
    assert list(found) == list(problems)
    for key, (start,) in problems.items():
        assert found[key][0].startswith(start)


def test_alert_filters_read_the_fields_mission_controls_own_alerts_keep_in_details(
    summary: Directive,
) -> None:
    from automations import events

    Automation.objects.create(
        name="slow only",
        directive=summary,
        trigger="alert",
        event_type="anomaly.detected",
        filters={"kind": "slow_thread"},
    )
    events.alert("anomaly.detected", "a spike", kind="denial_rate")
    assert not DirectiveExecution.objects.exists()
    events.alert("anomaly.detected", "T-9 is slow", kind="slow_thread", thread_id="T-9")
    run = DirectiveExecution.objects.get()
    assert run.trigger_info["event"]["details"] == {"kind": "slow_thread", "thread_id": "T-9"}

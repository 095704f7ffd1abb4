"""Ingest stores each event type, once, and thread state follows the events."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.models import MCPServer
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import IngestResult, ingest
from missioncontrol.jsontext import loads
from tests.conftest import at, event
from threads.models import ExecutionStep, LLMMessage, Thread

pytestmark = pytest.mark.django_db

SRV = Source(mcp_id="srv-alpha")


def run(*events: dict[str, Any], source: Source = SRV) -> IngestResult:
    return ingest(list(events), source)


def statuses(result: IngestResult) -> list[str]:
    return [v.status for v in result.verdicts]


def test_it_stores_a_thread_started_event_with_its_server() -> None:
    run(event("thread.started", thread_id="T-1", user_input="fix bug", execution_context={"repo": "x"}))
    thread = Thread.objects.get(id="T-1")
    assert thread.status == "running"
    assert thread.mcp_id == "srv-alpha"
    assert thread.user_input == "fix bug"
    assert thread.execution_context == {"repo": "x"}
    assert MCPServer.objects.get(id="srv-alpha").last_seen is not None


def test_it_stores_steps_messages_logs_and_permission_checks() -> None:
    result = run(
        event("thread.started"),
        event("thread.step", 1, sequence=1, details={"args": {"n": 1}}, duration_ms=12.5),
        event("thread.message", 2, role="agent", content="done", metadata={"model": "m"}),
        event("log", 3, thread_id="T-1", level="warning", context={"k": 1}, exception="Trace"),
        event("permission.check", 4, granted=False, reason="no rule", inheritance_chain=["T-0", "T-1"]),
        event("thread.ended", 5, status="error"),
    )
    assert statuses(result) == ["accepted"] * 6
    step = ExecutionStep.objects.get(thread_id="T-1")
    assert (step.sequence, step.details, step.duration_ms) == (1, {"args": {"n": 1}}, 12.5)
    message = LLMMessage.objects.get(thread_id="T-1")
    assert (message.role, message.content, message.metadata) == ("agent", "done", {"model": "m"})
    log = LogEntry.objects.get(thread_id="T-1")
    assert (log.level, log.context, log.exception, log.mcp_id) == ("WARN", {"k": 1}, "Trace", "srv-alpha")
    check = PermissionEvent.objects.get(thread_id="T-1")
    assert check.granted is False and check.severity == "warn"
    assert check.inheritance_chain == ["T-0", "T-1"]
    thread = Thread.objects.get(id="T-1")
    assert thread.status == "error" and thread.ended_at is not None


def test_it_stores_a_repeated_event_id_once_and_says_duplicate() -> None:
    log = event("log", message="once")
    first = run(log)
    again = run(log, log)
    assert statuses(first) == ["accepted"]
    assert statuses(again) == ["duplicate", "duplicate"]
    assert LogEntry.objects.filter(message="once").count() == 1


def test_it_applies_a_repeated_lifecycle_event_once() -> None:
    step = event("thread.step", 1, sequence=1, status="running")
    run(event("thread.started"), step)
    run(event("thread.step", 2, sequence=1, status="complete"))
    result = run(step)  # a retried old report must not roll the step back
    assert statuses(result) == ["duplicate"]
    assert ExecutionStep.objects.get(thread_id="T-1", sequence=1).status == "complete"


@pytest.mark.parametrize(
    ("bad", "field", "reason_part"),
    [
        ({"type": "log", "level": "INFO", "service": "s"}, "message", "required"),
        ({"type": "log", "level": "INFO", "service": 5, "message": "m"}, "service", "string"),
        ({"type": "log", "level": "LOUD", "service": "s", "message": "m"}, "level", "one of"),
        (
            {"type": "thread.step", "thread_id": "T", "sequence": "one", "step_type": "script"},
            "sequence",
            "integer",
        ),
        ({"type": "thread.ended", "thread_id": "T", "status": "running"}, "status", "one of"),
        (
            {
                "type": "permission.check",
                "thread_id": "T",
                "resource": "r",
                "action": "read",
                "granted": "yes",
            },
            "granted",
            "true or false",
        ),
        ({"type": "telemetry.blob"}, "type", "unknown event type"),
    ],
)
def test_it_rejects_a_malformed_event_naming_the_field(
    bad: dict[str, Any], field: str, reason_part: str
) -> None:
    bad = {"id": "bad-1", "timestamp": "2026-11-21T10:00:00Z", **bad}
    result = run(bad)
    verdict = result.verdicts[0]
    assert (verdict.status, verdict.field) == ("rejected", field)
    assert reason_part in (verdict.reason or "")


def test_it_stores_the_good_events_of_a_mixed_batch_and_reports_each_bad_one() -> None:
    result = run(
        event("log", message="good one"),
        {"id": "no-ts", "type": "log", "level": "INFO", "service": "s", "message": "m"},
        {
            "id": "bad-ts",
            "type": "log",
            "timestamp": "yesterday",
            "level": "INFO",
            "service": "s",
            "message": "m",
        },
        {"id": "x", "type": "nope", "timestamp": "2026-11-21T10:00:00Z"},
        "not an object",
        {"type": "log", "timestamp": "2026-11-21T10:00:00Z"},
        event("log", message="good two"),
    )
    assert statuses(result) == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert [v.field for v in result.verdicts[1:6]] == ["timestamp", "timestamp", "type", "event", "id"]
    assert set(LogEntry.objects.values_list("message", flat=True)) == {"good one", "good two"}


def test_it_orders_the_timeline_by_sequence_when_steps_arrive_out_of_order() -> None:
    run(event("thread.started"))
    run(event("thread.step", 3, sequence=3, description="third"))
    run(
        event("thread.step", 1, sequence=1, description="first"),
        event("thread.step", 2, sequence=2, description="second"),
    )
    timeline = Thread.objects.get(id="T-1").state()["timeline"]
    assert [s["description"] for s in timeline] == ["first", "second", "third"]


def test_it_links_a_child_that_arrives_before_its_parent() -> None:
    run(event("thread.started", 5, thread_id="child", parent_id="parent"))
    child = Thread.objects.get(id="child")
    assert child.parent_id == "parent"
    assert not Thread.objects.filter(id="parent").exists()
    run(event("thread.started", 0, thread_id="parent"))
    parent = Thread.objects.get(id="parent")
    assert list(parent.children.values_list("id", flat=True)) == ["child"]
    assert Thread.objects.roots().filter(id="child").count() == 0


def test_it_keeps_steps_that_arrive_before_their_thread_started() -> None:
    run(event("thread.step", 2, thread_id="T-early", sequence=1))
    placeholder = Thread.objects.get(id="T-early")
    assert placeholder.status == "running" and placeholder.mcp_id is None
    run(event("thread.started", 0, thread_id="T-early", user_input="late start"))
    thread = Thread.objects.get(id="T-early")
    assert thread.user_input == "late start" and thread.mcp_id == "srv-alpha"
    assert thread.steps.count() == 1


def test_it_keeps_the_final_status_when_the_end_arrives_before_the_start() -> None:
    run(event("thread.ended", 9, thread_id="T-2", status="cancelled"))
    run(event("thread.started", 0, thread_id="T-2"))
    thread = Thread.objects.get(id="T-2")
    assert thread.status == "cancelled"
    assert thread.ended_at is not None and thread.started_at < thread.ended_at


def test_it_never_reopens_or_changes_an_ended_thread() -> None:
    run(event("thread.started"), event("thread.ended", 5, status="complete"))
    result = run(event("thread.ended", 6, status="error"))
    assert statuses(result) == ["accepted"]
    assert Thread.objects.get(id="T-1").status == "complete"


def test_the_first_end_in_a_batch_ends_a_thread_and_is_announced_once() -> None:
    # Started and ended in one batch (as every OTLP root span is), then ended twice in one batch.
    result = run(
        event("thread.started", thread_id="T-new"),
        event("thread.ended", 7, thread_id="T-new", status="error"),
        event("thread.ended", 5, thread_id="T-new", status="complete"),
        event("thread.started", thread_id="T-old"),
    )
    later = run(
        event("thread.ended", 4, thread_id="T-old", status="cancelled"),
        event("thread.ended", 3, thread_id="T-old", status="complete"),
    )
    new, old = Thread.objects.get(id="T-new"), Thread.objects.get(id="T-old")
    assert (new.status, new.ended_at.isoformat()) == ("complete", at(5))  # type: ignore[union-attr]
    assert (old.status, old.ended_at.isoformat()) == ("complete", at(3))  # type: ignore[union-attr]
    for outbox, thread in ((result.outbox, "T-new"), (later.outbox, "T-old")):
        ends = [loads(e) for e in outbox.events[f"thread:{thread}"] if loads(e)["type"] == "thread.ended"]
        assert [e["status"] for e in ends] == ["complete", {"T-new": "error", "T-old": "cancelled"}[thread]]
        announced = [loads(e) for e in outbox.events["global"] if loads(e)["type"] == "thread.ended"]
        assert [(e["thread_id"], e["status"]) for e in announced] == [(thread, "complete")]
        assert [loads(e)["thread_id"] for e in outbox.events["mcp:srv-alpha"] if "ended_at" in loads(e)] == [
            thread
        ]


def test_it_updates_a_step_reported_again_with_the_same_sequence() -> None:
    run(event("thread.started"), event("thread.step", 1, sequence=1, status="running"))
    run(event("thread.step", 2, sequence=1, status="complete", duration_ms=40))
    step = ExecutionStep.objects.get(thread_id="T-1")
    assert (step.status, step.duration_ms) == ("complete", 40)


def test_it_records_resource_usage_reported_on_steps() -> None:
    run(event("thread.started"), event("thread.step", 1, memory_usage=2048, cpu_usage=37.5))
    thread = Thread.objects.get(id="T-1")
    assert (thread.memory_usage, thread.cpu_usage) == (2048, 37.5)


def test_it_rejects_an_mcp_id_other_than_the_keys_server() -> None:
    result = run(event("log", mcp_id="srv-other"))
    assert result.verdicts[0].field == "mcp_id"
    assert "srv-alpha" in (result.verdicts[0].reason or "")


def test_it_requires_an_mcp_id_when_the_key_names_no_server() -> None:
    result = run(event("log"), event("log", mcp_id="srv-beta"), source=Source(mcp_id=None))
    assert statuses(result) == ["rejected", "accepted"]
    assert LogEntry.objects.get().mcp_id == "srv-beta"
    assert MCPServer.objects.filter(id="srv-beta").exists()


def test_it_marks_escalations_critical_unless_told_otherwise() -> None:
    run(event("permission.check", escalation_detected=True))
    assert PermissionEvent.objects.get().severity == "critical"


def test_it_searches_log_messages() -> None:
    run(event("log", message="disk quota exceeded on volume"), event("log", message="all good"))
    assert list(LogEntry.objects.search("quota exceeded").values_list("message", flat=True)) == [
        "disk quota exceeded on volume"
    ]


def test_it_registers_a_server_again_after_it_was_deleted(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        run(event("thread.started", thread_id="T-a"))  # now remembered as registered
    MCPServer.objects.filter(id="srv-alpha").delete()
    result = run(event("thread.started", thread_id="T-b"))
    assert statuses(result) == ["accepted"]
    assert Thread.objects.get(id="T-b").mcp_id == "srv-alpha"


# -- characters PostgreSQL refuses ------------------------------------------------------

NUL, LONE = "\x00", "\ud800"  # PostgreSQL's text and jsonb refuse both, for the whole statement


def test_a_nul_or_a_lone_surrogate_anywhere_is_stored_escaped_and_sinks_nothing() -> None:
    """Every event type, every stored field kind: plain text, ids, JSON values, JSON keys."""
    result = run(
        event("log", 0, message="before"),
        event(
            "thread.started", 1, thread_id="T-1", user_input=f"a{NUL}b", execution_context={f"k{NUL}": LONE}
        ),
        event(
            "thread.step",
            2,
            sequence=1,
            description=LONE,
            details={"result": {"content": [{"text": f"x{NUL}"}]}},
        ),
        event("thread.message", 3, content=f"hi{LONE}", metadata={"m": [NUL]}),
        event("log", 4, thread_id="T-1", message=f"line{NUL}", context={"n": {"deep": LONE}}, exception=NUL),
        event(
            "permission.check", 5, reason=f"r{NUL}", rules_checked=[{"id": LONE}], inheritance_chain=["T-1"]
        ),
        event("thread.ended", 6, thread_id="T-1", status="complete"),
        event("log", 7, id=f"odd{NUL}id", message="after"),
    )
    assert statuses(result) == ["accepted"] * 8
    answer = result.as_dict()["results"]
    assert "escaped" not in answer[0] and "escaped" not in answer[6]
    assert [e["field"] for e in answer[1]["escaped"]] == [
        "user_input",
        "execution_context.k\\u0000",
        "execution_context.k\\u0000",
    ]
    assert answer[1]["escaped"][0]["reason"] == (
        "holds NUL (U+0000), which PostgreSQL cannot store: stored as the text \\u0000"
    )
    assert answer[2]["escaped"][0] == {
        "field": "description",
        "reason": "holds a lone surrogate (U+D800), which PostgreSQL cannot store: "
        "stored as the text \\ud800",
    }
    assert [e["field"] for e in answer[2]["escaped"]] == ["description", "details.result.content[0].text"]
    assert answer[7]["id"] == "odd\\u0000id" and answer[7]["escaped"][0]["field"] == "id"

    thread = Thread.objects.get(id="T-1")
    assert thread.user_input == "a\\u0000b" and thread.execution_context == {"k\\u0000": "\\ud800"}
    assert thread.status == "complete"
    step = ExecutionStep.objects.get(thread_id="T-1")
    assert step.description == "\\ud800" and step.details["result"]["content"][0]["text"] == "x\\u0000"
    message = LLMMessage.objects.get(thread_id="T-1")
    assert (message.content, message.metadata) == ("hi\\ud800", {"m": ["\\u0000"]})
    log = LogEntry.objects.get(thread_id="T-1")
    assert (log.message, log.context, log.exception) == ("line\\u0000", {"n": {"deep": "\\ud800"}}, "\\u0000")
    check = PermissionEvent.objects.get(thread_id="T-1")
    assert (check.reason, check.rules_checked) == ("r\\u0000", [{"id": "\\ud800"}])
    assert set(LogEntry.objects.values_list("message", flat=True)) == {"before", "line\\u0000", "after"}
    assert LogEntry.objects.filter(id="odd\\u0000id").exists()


def test_a_repeat_of_an_escaped_event_is_still_a_duplicate() -> None:
    first = run(event("log", id=f"n{NUL}", message=NUL))
    again = run(event("log", id=f"n{NUL}", message=NUL))
    assert statuses(first) == ["accepted"] and statuses(again) == ["duplicate"]
    assert LogEntry.objects.get().message == "\\u0000"

"""Ingest: validate a batch, store it in one transaction, and say what became of each event.

The session manager's rules live on the models (Thread.finish, record_started, ...);
this module is the workflow across apps: which rows each event type writes, in what
order, and which live channels hear about them once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.db.models.functions import Now

from audit.escalation import detect as detect_escalations
from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.models import MCPServer
from missioncontrol.bulk import copy_new, insert_new
from missioncontrol.ingest.events import Invalid, Source, validate
from missioncontrol.live import LogMeta, Outbox, encode
from missioncontrol.redaction import redact_event
from threads.models import ExecutionStep, LLMMessage, Thread, ThreadEvent

Status = Literal["accepted", "duplicate", "rejected"]

_LOG_FIELDS = (
    "id",
    "timestamp",
    "level",
    "service",
    "thread_id",
    "mcp_id",
    "message",
    "context",
    "exception",
)
_MESSAGE_FIELDS = ("id", "thread", "role", "content", "timestamp", "metadata")
_PERMISSION_FIELDS = (
    "id",
    "timestamp",
    "thread",
    "user_id",
    "resource",
    "action",
    "granted",
    "reason",
    "rules_checked",
    "inheritance_chain",
    "escalation_detected",
    "escalations",
    "severity",
)


@dataclass(slots=True)
class Verdict:
    index: int
    id: Any
    status: Status
    field: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.status == "rejected":
            out["field"], out["reason"] = self.field, self.reason
        return out


@dataclass
class IngestResult:
    verdicts: list[Verdict]
    outbox: Outbox = field(default_factory=Outbox)

    def count(self, status: Status) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.count("accepted"),
            "duplicates": self.count("duplicate"),
            "rejected": self.count("rejected"),
            "results": [v.as_dict() for v in self.verdicts],
        }


def _iso(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    out["timestamp"] = event["timestamp"].isoformat()
    return out


def triage(raw_events: list[Any], source: Source) -> tuple[list[Verdict], list[tuple[int, dict[str, Any]]]]:
    """Verdicts before storage (rejected, repeated in the batch, or accepted) and the valid events.

    Needs no database: the spool (ingest.spool) keeps the accepted ones while it is down.
    """
    verdicts: list[Verdict] = []
    valid: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_events):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            # Secrets are masked before anything is stored or sent live.
            event = redact_event(validate(raw, source))
        except Invalid as exc:
            verdicts.append(Verdict(index, raw_id, "rejected", exc.field, exc.reason))
            continue
        if event["id"] in seen:
            verdicts.append(Verdict(index, event["id"], "duplicate"))
            continue
        seen.add(event["id"])
        verdicts.append(Verdict(index, event["id"], "accepted"))
        valid.append((index, event))
    return verdicts, valid


def ingest(raw_events: list[Any], source: Source) -> IngestResult:
    """Validate and store a batch; the result's outbox is ready to send after commit."""
    verdicts, valid = triage(raw_events, source)
    result = IngestResult(verdicts)
    if valid:
        with transaction.atomic():
            stored = _store([e for _, e in valid], result.outbox)
        for index, event in valid:
            if event["id"] not in stored:
                verdicts[index].status = "duplicate"
    return result


def _by_type(events: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        groups.setdefault(event["type"], []).append(event)
    return groups


def _store(events: list[dict[str, Any]], outbox: Outbox) -> set[str]:
    """Write the batch; return the ids stored for the first time."""
    groups = _by_type(events)
    logs = groups.get("log", [])
    started, steps = groups.get("thread.started", []), groups.get("thread.step", [])
    messages, ended = groups.get("thread.message", []), groups.get("thread.ended", [])
    checks = groups.get("permission.check", [])

    MCPServer.objects.register_seen(
        {e["mcp_id"] for e in started + logs if e["mcp_id"]},
        referenced={e["mcp_id"] for e in started},  # threads.mcp is a foreign key
    )

    # Lifecycle events go through the ledger, so a repeat changes nothing.
    lifecycle = started + steps + ended
    new_ids = insert_new(
        ThreadEvent, ("id", "type", "thread_id"), [(e["id"], e["type"], e["thread_id"]) for e in lifecycle]
    )
    started = [e for e in started if e["id"] in new_ids]
    steps = [e for e in steps if e["id"] in new_ids]
    ended = [e for e in ended if e["id"] in new_ids]

    first_seen: dict[str, datetime] = {}
    for event in steps + messages + ended + checks:
        tid, ts = event["thread_id"], event["timestamp"]
        if tid not in first_seen or ts < first_seen[tid]:
            first_seen[tid] = ts
    Thread.objects.ensure_exist(first_seen)
    _record_started(started, outbox)
    _record_steps(steps, outbox)
    new_ids |= _insert_messages(messages, outbox)
    new_ids |= _insert_logs(logs, outbox)
    new_ids |= _insert_checks(checks, outbox)
    _apply_ends_and_usage(ended, steps, outbox)

    touched = set(first_seen) | {e["thread_id"] for e in started}
    if touched:
        # Any news of a thread means it is not stalled (any more).
        Thread.objects.filter(id__in=touched).update(updated_at=Now(), stalled_at=None)
    return new_ids


def _record_started(started: list[dict[str, Any]], outbox: Outbox) -> None:
    latest: dict[str, dict[str, Any]] = {}
    for event in started:  # the same thread started twice in one batch: the later one wins
        latest[event["thread_id"]] = event
    Thread.objects.record_started(
        [
            Thread(
                id=e["thread_id"],
                parent_id=e["parent_id"],
                mcp_id=e["mcp_id"],
                user_input=e["user_input"],
                execution_context=e["execution_context"],
                started_at=e["timestamp"],
            )
            for e in latest.values()
        ]
    )
    for event in started:
        payload = _iso(event)
        outbox.add(f"thread:{event['thread_id']}", encode(payload))
        created = encode({**payload, "type": "thread.created"})
        outbox.add("global", created)
        outbox.add(f"mcp:{event['mcp_id']}", created)


def _record_steps(steps: list[dict[str, Any]], outbox: Outbox) -> None:
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for event in steps:  # one row per (thread, sequence); the latest report wins
        key = (event["thread_id"], event["sequence"])
        if key not in latest or event["timestamp"] >= latest[key]["timestamp"]:
            latest[key] = event
    ExecutionStep.objects.record(
        [
            ExecutionStep(
                thread_id=e["thread_id"],
                sequence=e["sequence"],
                timestamp=e["timestamp"],
                duration_ms=e["duration_ms"],
                step_type=e["step_type"],
                description=e["description"],
                details=e["details"],
                status=e["status"],
            )
            for e in latest.values()
        ]
    )
    for event in steps:
        outbox.add(f"thread:{event['thread_id']}", encode(_iso(event)))


def _insert_messages(messages: list[dict[str, Any]], outbox: Outbox) -> set[str]:
    new = insert_new(
        LLMMessage,
        _MESSAGE_FIELDS,
        [(e["id"], e["thread_id"], e["role"], e["content"], e["timestamp"], e["metadata"]) for e in messages],
    )
    for event in messages:
        if event["id"] in new:
            outbox.add(f"thread:{event['thread_id']}", encode(_iso(event)))
    return new


def _insert_logs(logs: list[dict[str, Any]], outbox: Outbox) -> set[str]:
    # The hottest path: one COPY for the whole batch, one encode per new log.
    new = copy_new(LogEntry, _LOG_FIELDS, [tuple(e[f] for f in _LOG_FIELDS) for e in logs])
    for event in logs:
        if event["id"] not in new:
            continue
        encoded = encode(_iso(event))
        meta: LogMeta = (
            event["id"],
            event["level"],
            event["service"],
            event["thread_id"],
            event["mcp_id"],
            event["message"],
        )
        outbox.add("logs:*", encoded, meta)
        if event["thread_id"]:
            outbox.add(f"logs:{event['thread_id']}", encoded, meta)
    return new


def _insert_checks(checks: list[dict[str, Any]], outbox: Outbox) -> set[str]:
    new = insert_new(
        PermissionEvent,
        _PERMISSION_FIELDS,
        [tuple(e["thread_id"] if f == "thread" else e[f] for f in _PERMISSION_FIELDS) for e in checks],
    )
    # Escalation detection sees the batch as history, then flags what fired (rows included).
    alerts = detect_escalations([e for e in checks if e["id"] in new])
    alerted = {alert["check_id"] for alert in alerts}
    for event in checks:
        if event["id"] in new:
            outbox.add(f"permission:{event['thread_id']}", encode(_iso(event)))
            if event["escalation_detected"] and event["id"] not in alerted:
                # The agent flagged it itself: an alert on `global` too (alert automations).
                outbox.add("global", encode({**_iso(event), "type": "permission.escalation"}))
    for alert in alerts:
        encoded = encode(alert)
        outbox.add("global", encoded)
        outbox.add(f"permission:{alert['thread_id']}", encoded)
    return new


def _apply_ends_and_usage(ended: list[dict[str, Any]], steps: list[dict[str, Any]], outbox: Outbox) -> None:
    """Final statuses and resource usage, applied with one read and one bulk update."""
    with_usage = [e for e in steps if e["memory_usage"] is not None or e["cpu_usage"] is not None]
    if not ended and not with_usage:
        return
    threads = Thread.objects.in_bulk({e["thread_id"] for e in ended + with_usage})
    changed: set[str] = set()
    for event in sorted(with_usage + ended, key=lambda e: e["timestamp"]):
        thread = threads[event["thread_id"]]
        if thread.record_usage(event["memory_usage"], event["cpu_usage"]):
            changed.add(thread.id)
        if event["type"] != "thread.ended":
            continue
        finished = thread.finish(event["status"], event["timestamp"])
        payload = encode({**_iso(event), "ended_at": event["timestamp"].isoformat()})
        outbox.add(f"thread:{thread.id}", payload)
        if finished:
            changed.add(thread.id)
            outbox.add("global", payload)
            if thread.mcp_id:
                outbox.add(f"mcp:{thread.mcp_id}", payload)
    if changed:
        Thread.objects.save_fields(
            [threads[t] for t in changed], ["status", "ended_at", "memory_usage", "cpu_usage"]
        )

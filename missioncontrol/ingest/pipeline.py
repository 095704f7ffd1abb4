"""Ingest: validate a batch, store it in one transaction, and say what became of each event.

The session manager's rules live on the models (Thread.finish, Thread.objects.record_news, ...);
this module is the workflow across apps: which rows each event type writes, in what
order, and which live channels hear about them once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.db import connection, transaction

from audit.escalation import detect as detect_escalations
from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.models import MCPServer
from missioncontrol.bulk import insert_new
from missioncontrol.ingest import storable
from missioncontrol.ingest.events import Invalid, Source, validate
from missioncontrol.live import LogMeta, Outbox, encode
from missioncontrol.models import Team
from missioncontrol.redaction import redact_event
from threads.models import ExecutionStep, LLMMessage, Session, Thread, ThreadEvent
from usage.models import LLMUsage

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
    "team",
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
    escaped: list[dict[str, str]] | None = None  # fields whose refused characters were escaped

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.status == "rejected":
            out["field"], out["reason"] = self.field, self.reason
        if self.escaped:
            out["escaped"] = self.escaped
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
    # What PostgreSQL cannot store is escaped before anything reads it (ids included).
    raw_events, escaped = storable.escape_batch(raw_events)
    for index, raw in enumerate(raw_events):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            # Secrets are masked before anything is stored or sent live.
            event = redact_event(validate(raw, source))
        except Invalid as exc:
            verdicts.append(Verdict(index, raw_id, "rejected", exc.field, exc.reason, escaped.get(index)))
            continue
        if event["id"] in seen:
            verdicts.append(Verdict(index, event["id"], "duplicate", escaped=escaped.get(index)))
            continue
        seen.add(event["id"])
        verdicts.append(Verdict(index, event["id"], "accepted", escaped=escaped.get(index)))
        valid.append((index, event))
    return verdicts, valid


def ingest(raw_events: list[Any], source: Source) -> IngestResult:
    """Validate and store a batch; the result's outbox is ready to send after commit."""
    verdicts, valid = triage(raw_events, source)
    result = IngestResult(verdicts)
    if valid:
        with transaction.atomic():
            stored, refused = _store([e for _, e in valid], result.outbox, source.team_id, source.system)
        for index, event in valid:
            if event.get("thread_id") in refused:
                verdict = verdicts[index]
                verdict.status, verdict.field = "rejected", "thread_id"
                verdict.reason = f"thread {event['thread_id']!r} belongs to another team"
            elif event["id"] not in stored:
                verdicts[index].status = "duplicate"
    return result


def _by_type(events: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        groups.setdefault(event["type"], []).append(event)
    return groups


class Audience:
    """Who may see each event on the live channels: the teams of its thread and source.

    `threads` are the teams of the batch's threads (a thread keeps the team of whoever
    created it, which may not be this batch's source), read as they were written;
    `others` (threads logs name) are read once per batch.
    """

    def __init__(self, source_team: int | None, threads: dict[str, int | None], others: set[str]) -> None:
        self.source = [source_team] if source_team is not None else []
        self.threads = threads
        others = others - threads.keys()
        if others:
            stored = Thread.objects.filter(id__in=others).values_list("id", "team_id")
            self.threads = {**threads, **dict(stored)}

    def of_thread(self, thread_id: str) -> list[int]:
        team = self.threads.get(thread_id)
        return [team] if team is not None else []

    def of_log(self, thread_id: str | None) -> list[int]:
        # LogEntry.visible_to: the log's own team; for a log of no team, its thread's.
        if self.source:
            return self.source
        team = self.threads.get(thread_id) if thread_id else None
        return [team] if team is not None else []


def _store(
    events: list[dict[str, Any]], outbox: Outbox, team_id: int | None = None, system: bool = False
) -> tuple[set[str], set[str]]:
    """Write the batch (new threads and logs join `team_id`): the ids stored for the first
    time, and the threads of another team the batch named (their events are not stored).

    Team isolation costs no query of its own: `record_news` writes only the threads of
    `team_id` and answers their teams, and the teams of the threads only logs name are
    read once per batch for the live audience anyway. Unless the source is `system`, a
    thread of another team (no team counts as one) refuses every event naming it.
    """
    groups = _by_type(events)
    logs = groups.get("log", [])
    started, steps = groups.get("thread.started", []), groups.get("thread.step", [])
    messages, ended = groups.get("thread.message", []), groups.get("thread.ended", [])
    checks = groups.get("permission.check", [])
    session_ends = groups.get("session.ended", [])
    if team_id is not None and not Team.objects.filter(pk=team_id).exists():
        # The key's or token's team was deleted while these events were on their way (a
        # batcher retrying, the spool): stored without one rather than refused forever.
        team_id = None

    MCPServer.objects.register_seen(
        {e["mcp_id"] for e in started + logs if e["mcp_id"]},
        referenced={e["mcp_id"] for e in started},  # threads.mcp is a foreign key
    )

    # Lifecycle events go through the ledger, so a repeat changes nothing.
    lifecycle = [(e["id"], e["type"], e["thread_id"]) for e in started + steps + ended]
    lifecycle += [(e["id"], e["type"], e["session_id"]) for e in session_ends]
    new_ids = insert_new(ThreadEvent, ("id", "type", "thread_id"), lifecycle)
    started = [e for e in started if e["id"] in new_ids]
    steps = [e for e in steps if e["id"] in new_ids]
    ended = [e for e in ended if e["id"] in new_ids]
    session_ends = [e for e in session_ends if e["id"] in new_ids]

    # Every thread with news exists (a placeholder until its thread.started) and is no
    # longer stalled; the answer is each one's team.
    first_seen: dict[str, datetime] = {}
    for event in steps + messages + ended + checks:
        tid, ts = event["thread_id"], event["timestamp"]
        if tid not in first_seen or ts < first_seen[tid]:
            first_seen[tid] = ts
    # On PostgreSQL, ends with no usage to record (OTLP's) are applied as the threads
    # are written: a thread created now is created ended, the others in one update.
    ends = _first_ends(ended) if _ends_alone(ended, steps) else {}
    news = Thread.objects.record_news(
        _started_rows(started), first_seen, team_id, ends, own_team_only=not system
    )
    audience = Audience(team_id, news.teams, {e["thread_id"] for e in logs if e["thread_id"]})
    refused: set[str] = set()
    if not system:
        # Named by a lifecycle event yet not answered (PostgreSQL), or answered with another team.
        named = {e["thread_id"] for e in started} | first_seen.keys()
        refused = {t for t in named if news.teams.get(t, _NOT_OURS) != team_id}
        refused |= {e["thread_id"] for e in logs if audience.threads.get(e["thread_id"], team_id) != team_id}
    if refused:
        # Their lifecycle events were never stored: a retry once the thread is sorted out counts.
        dropped = {e["id"] for e in started + steps + ended if e["thread_id"] in refused} & new_ids
        started, steps, messages, ended, checks, logs = (
            [e for e in group if e["thread_id"] not in refused]
            for group in (started, steps, messages, ended, checks, logs)
        )
        ends = {t: end for t, end in ends.items() if t not in refused}
        if dropped:
            ThreadEvent.objects.filter(id__in=dropped).delete()
            new_ids -= dropped
    # Steps only once their threads are known to be the batch's team's own; then each
    # thread's error count and current step are counted again from its stored steps.
    _store_steps(steps)
    Thread.objects.recount_steps({e["thread_id"] for e in steps})
    Session.objects.record(_session_rows(started, team_id))
    _announce_started(started, outbox, audience)
    for event in steps:
        tid = event["thread_id"]
        outbox.add(f"thread:{tid}", encode(_iso(event)), teams=audience.of_thread(tid))
    new_ids |= _insert_messages(messages, outbox, audience)
    new_ids |= _insert_logs(logs, outbox, audience, team_id)
    new_ids |= _insert_checks(checks, outbox, audience)
    if ends:
        _apply_ends(ended, ends, news.ended, outbox, audience)
    else:
        _apply_ends_and_usage(ended, steps, outbox, audience)
    if session_ends:
        _end_sessions(session_ends, team_id)
    return new_ids, refused


_NOT_OURS = object()  # a thread record_news did not answer: another team's


def _ends_alone(ended: list[dict[str, Any]], steps: list[dict[str, Any]]) -> bool:
    """Whether the batch's ends can be applied in SQL: PostgreSQL, no resource usage to record."""
    return (
        bool(ended)
        and connection.vendor == "postgresql"
        and all(e["memory_usage"] is None and e["cpu_usage"] is None for e in steps + ended)
    )


def _first_ends(ended: list[dict[str, Any]]) -> dict[str, tuple[str, datetime]]:
    """The end that ends each thread: its earliest in the batch (Thread.finish refuses later ones)."""
    first: dict[str, tuple[str, datetime]] = {}
    for event in sorted(ended, key=lambda e: e["timestamp"]):
        first.setdefault(event["thread_id"], (event["status"], event["timestamp"]))
    return first


def _started_rows(started: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Thread.objects.record_news's rows: one per thread, the later start in the batch wins."""
    latest: dict[str, dict[str, Any]] = {}
    for event in started:
        latest[event["thread_id"]] = event
    return [
        (
            e["thread_id"],
            e["parent_id"],
            e["mcp_id"],
            e["user_input"],
            e["execution_context"],
            e["timestamp"],
            e["session_id"],
        )
        for e in latest.values()
    ]


def _session_rows(started: list[dict[str, Any]], team_id: int | None) -> list[tuple[Any, ...]]:
    """Session.objects.record's rows: one per session the batch's threads name, seen at its latest.

    Who the session is comes from its earliest thread's execution context (the /mcp
    recorder puts `via`, `principal` and `client` there).
    """
    first: dict[str, tuple[Any, ...]] = {}
    last_seen: dict[str, datetime] = {}
    for event in sorted(started, key=lambda e: e["timestamp"]):
        sid = event["session_id"]
        if sid is None:
            continue
        last_seen[sid] = event["timestamp"]
        if sid not in first:
            context = event["execution_context"]
            client = context.get("client")
            first[sid] = (
                sid,
                team_id,
                str(context.get("via") or "")[:100],
                str(context.get("principal") or "")[:200],
                client if isinstance(client, dict) else {},
                event["timestamp"],
            )
    return [(*row, last_seen[sid]) for sid, row in first.items()]


def _end_sessions(events: list[dict[str, Any]], team_id: int | None) -> None:
    """Sessions end at their first reported end; another team's session is left alone."""
    ends: dict[str, datetime] = {}
    for event in events:
        ends[event["session_id"]] = min(event["timestamp"], ends.get(event["session_id"], event["timestamp"]))
    Session.objects.end(ends, team_id)


def _announce_started(started: list[dict[str, Any]], outbox: Outbox, audience: Audience) -> None:
    for event in started:
        payload = _iso(event)
        teams = audience.of_thread(event["thread_id"])
        outbox.add(f"thread:{event['thread_id']}", encode(payload), teams=teams)
        created = encode({**payload, "type": "thread.created"})
        outbox.add("global", created, teams=teams)
        outbox.add(f"mcp:{event['mcp_id']}", created, teams=teams)


def _store_steps(steps: list[dict[str, Any]]) -> None:
    """Steps, and the LLM usage they report (a later report of a step updates both)."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for event in steps:  # one row per (thread, sequence); the latest report wins
        key = (event["thread_id"], event["sequence"])
        if key not in latest or event["timestamp"] >= latest[key]["timestamp"]:
            latest[key] = event
    # In threads.models.STEP_FIELDS order.
    ExecutionStep.objects.record(
        [
            (
                e["thread_id"],
                e["sequence"],
                e["timestamp"],
                e["duration_ms"],
                e["step_type"],
                e["description"],
                e["details"],
                e["status"],
            )
            for e in latest.values()
        ]
    )
    LLMUsage.objects.record_steps(latest.values())


def _insert_messages(messages: list[dict[str, Any]], outbox: Outbox, audience: Audience) -> set[str]:
    new = insert_new(
        LLMMessage,
        _MESSAGE_FIELDS,
        [(e["id"], e["thread_id"], e["role"], e["content"], e["timestamp"], e["metadata"]) for e in messages],
    )
    for event in messages:
        if event["id"] in new:
            tid = event["thread_id"]
            outbox.add(f"thread:{tid}", encode(_iso(event)), teams=audience.of_thread(tid))
    return new


def _insert_logs(
    logs: list[dict[str, Any]], outbox: Outbox, audience: Audience, team_id: int | None
) -> set[str]:
    # The hottest path: one COPY for the whole batch (after the id ledger on PostgreSQL),
    # one encode per new log.
    fields = _LOG_FIELDS[:-1]
    new = LogEntry.objects.store_new(_LOG_FIELDS, [(*(e[f] for f in fields), team_id) for e in logs])
    for event in logs:
        if event["id"] not in new:
            continue
        encoded = encode(_iso(event))
        teams = audience.of_log(event["thread_id"])
        meta: LogMeta = (
            event["id"],
            event["level"],
            event["service"],
            event["thread_id"],
            event["mcp_id"],
            event["message"],
        )
        outbox.add("logs:*", encoded, meta, teams)
        if event["thread_id"]:
            outbox.add(f"logs:{event['thread_id']}", encoded, meta, teams)
    return new


def _insert_checks(checks: list[dict[str, Any]], outbox: Outbox, audience: Audience) -> set[str]:
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
            tid = event["thread_id"]
            outbox.add(f"permission:{tid}", encode(_iso(event)), teams=audience.of_thread(tid))
            if event["escalation_detected"] and event["id"] not in alerted:
                # The agent flagged it itself: an alert on `global` too (alert automations).
                alert = encode({**_iso(event), "type": "permission.escalation"})
                outbox.add("global", alert, teams=audience.of_thread(tid))
    for alert in alerts:
        encoded = encode(alert)
        teams = audience.of_thread(alert["thread_id"])
        outbox.add("global", encoded, teams=teams)
        outbox.add(f"permission:{alert['thread_id']}", encoded, teams=teams)
    return new


def _apply_ends_and_usage(
    ended: list[dict[str, Any]], steps: list[dict[str, Any]], outbox: Outbox, audience: Audience
) -> None:
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
        teams = [thread.team_id] if thread.team_id is not None else []
        outbox.add(f"thread:{thread.id}", payload, teams=teams)
        if finished:
            changed.add(thread.id)
            outbox.add("global", payload, teams=teams)
            if thread.mcp_id:
                outbox.add(f"mcp:{thread.mcp_id}", payload, teams=teams)
    if changed:
        Thread.objects.save_fields(
            [threads[t] for t in changed], ["status", "ended_at", "memory_usage", "cpu_usage"]
        )


def _apply_ends(
    ended: list[dict[str, Any]],
    ends: dict[str, tuple[str, datetime]],
    created_ended: dict[str, str | None],
    outbox: Outbox,
    audience: Audience,
) -> None:
    """`_apply_ends_and_usage` for ends alone (`ends`: each thread's first), on PostgreSQL.

    Threads created ended (`created_ended`: id -> server) are done; one update ends
    the others that still run and says which.
    """
    rest = [(tid, status, at) for tid, (status, at) in ends.items() if tid not in created_ended]
    finished = {**created_ended, **Thread.objects.finish_many(rest)}
    for event in sorted(ended, key=lambda e: e["timestamp"]):
        tid = event["thread_id"]
        payload = encode({**_iso(event), "ended_at": event["timestamp"].isoformat()})
        teams = audience.of_thread(tid)
        outbox.add(f"thread:{tid}", payload, teams=teams)
        if tid in finished and ends[tid] == (event["status"], event["timestamp"]):
            finished_now = finished.pop(tid)  # the first end only, should two be equal
            outbox.add("global", payload, teams=teams)
            if finished_now:
                outbox.add(f"mcp:{finished_now}", payload, teams=teams)

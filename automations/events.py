"""What Mission Control's own scripts tell the world: alert events and log entries.

Alerts go live on the `global` channel (and `mcp:{id}` / `thread:{id}` when they are
about one); they are what alert-triggered automations react to. Who sees an alert: the
team of the thread it is about; everyone for a shared server's; otherwise the current
run's team (automations.scope), or admins alone for a system run. Log entries are
stored through the ingest pipeline like any pushed log, as the current run's team's, so
they are searchable and live on `logs:*` for that team. Scripts are synchronous
(Celery, `run_directive`); the channel layer is reached through `async_to_sync`, which
hops back onto the caller's event loop when there is one (the in-process scheduler, a
test).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync

from automations.scope import current
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.live import Outbox, encode, now_iso
from threads.models import Thread

# The service and server id Mission Control's own log entries carry.
SERVICE = "mission-control"

AlertType = Literal["anomaly.detected", "thread.stalled", "thread.timed_out", "mcp.escalated"]
ALERT_TYPES: tuple[AlertType, ...] = (
    "anomaly.detected",
    "thread.stalled",
    "thread.timed_out",
    "mcp.escalated",
)
Severity = Literal["info", "warn", "critical"]


class Alert(TypedDict):
    type: AlertType
    id: str
    timestamp: str
    severity: Severity
    message: str
    details: dict[str, Any]


def alert(
    type_: AlertType,
    message: str,
    *,
    severity: Severity = "warn",
    thread_id: str | None = None,
    mcp_id: str | None = None,
    **details: Any,
) -> Alert:
    """Publish one alert on `global` (and on the thread's or server's channel); answer it."""
    return publish(
        [make_alert(type_, message, severity=severity, thread_id=thread_id, mcp_id=mcp_id, **details)]
    )[0]


def make_alert(
    type_: AlertType,
    message: str,
    *,
    severity: Severity = "warn",
    thread_id: str | None = None,
    mcp_id: str | None = None,
    **details: Any,
) -> Alert:
    if thread_id is not None:
        details["thread_id"] = thread_id
    if mcp_id is not None:
        details["mcp_id"] = mcp_id
    return {
        "type": type_,
        "id": f"alert-{uuid.uuid4().hex}",
        "timestamp": now_iso(),
        "severity": severity,
        "message": message,
        "details": details,
    }


def publish(alerts: list[Alert]) -> list[Alert]:
    """Send `alerts` as one event frame per channel, each to those who may see it."""
    if not alerts:
        return alerts
    thread_ids = {a["details"]["thread_id"] for a in alerts if a["details"].get("thread_id")}
    thread_teams = dict(Thread.objects.filter(id__in=thread_ids).values_list("id", "team_id"))
    outbox = Outbox()
    for item in alerts:
        encoded = encode(dict(item))
        teams = _audience(item, thread_teams)
        outbox.add("global", encoded, teams=teams)
        if item["details"].get("thread_id"):
            outbox.add(f"thread:{item['details']['thread_id']}", encoded, teams=teams)
        if item["details"].get("mcp_id"):
            outbox.add(f"mcp:{item['details']['mcp_id']}", encoded, teams=teams)
    async_to_sync(outbox.send)()
    return alerts


def _audience(alert: Alert, thread_teams: dict[str, int | None]) -> list[int] | None:
    """The teams that see `alert` (None: everyone; []: admins only)."""
    thread_id = alert["details"].get("thread_id")
    if thread_id:
        team = thread_teams.get(thread_id)
        return [team] if team is not None else []
    if alert["type"] == "mcp.escalated":
        return None  # a shared server that would not heal: every team calls it
    team = current().team
    return [team] if team is not None else []


def log(
    level: Literal["DEBUG", "INFO", "WARN", "ERROR"],
    message: str,
    *,
    mcp_id: str = SERVICE,
    thread_id: str | None = None,
    **context: Any,
) -> str:
    """Store one log entry (service `mission-control`) through the ingest pipeline; its id."""
    return logs(
        [{"level": level, "message": message, "mcp_id": mcp_id, "thread_id": thread_id, "context": context}]
    )[0]


def logs(entries: list[dict[str, Any]]) -> list[str]:
    """Store several entries ({level, message, mcp_id?, thread_id?, context?}) in one batch."""
    events = [
        {
            "id": f"mc-{uuid.uuid4().hex}",
            "type": "log",
            "timestamp": now_iso(),
            "level": e["level"],
            "service": SERVICE,
            "mcp_id": e.get("mcp_id") or SERVICE,
            "thread_id": e.get("thread_id"),
            "message": e["message"],
            "context": e.get("context") or {},
        }
        for e in entries
    ]
    if not events:
        return []
    result = ingest(events, Source(mcp_id=None, team_id=current().team, system=True))
    rejected = [v for v in result.verdicts if v.status == "rejected"]
    if rejected:
        raise ValueError(f"log rejected: {rejected[0].field}: {rejected[0].reason}")
    async_to_sync(result.outbox.send)()
    return [e["id"] for e in events]


def end_threads(ends: dict[str, str], at: str | None = None) -> None:
    """End threads {id: final status} through the ingest pipeline (live on their channels).

    One that has already ended keeps its status, as for any thread.ended event.
    """
    when = at or now_iso()
    events = [
        {
            "id": f"mc-end-{uuid.uuid4().hex}",
            "type": "thread.ended",
            "timestamp": when,
            "thread_id": tid,
            "status": s,
        }
        for tid, s in ends.items()
    ]
    if events:
        result = ingest(events, Source(mcp_id=None, team_id=current().team, system=True))
        async_to_sync(result.outbox.send)()

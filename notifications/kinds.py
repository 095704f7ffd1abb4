"""Which published events are alerts, what their key is, and when each kind clears.

An alert's key is its kind and its subject (`mcp.status:git`, `thread.stalled:T-1`):
while the alert of a key is open, the same alert again sends nothing. The kinds:

- `mcp.status` (a server going `degraded`: warn, `disconnected`: critical; subject: the
  server) clears when the server is `connected` again, or is disabled or removed.
- `mcp.escalated` (healing gave up; the server) clears the same way.
- `thread.stalled` (monitor_thread_health; the thread) clears when the thread has a
  step again, or ends.
- `anomaly.detected` (detect_anomalies; the anomaly's knowledge entry) clears when a
  later run of the directive that found it completes without finding it again.
- `directive.execution` (an automation's run failing, warn; the automation) clears when a
  later run of that automation completes.
- `thread.timed_out` (cleanup_stale_sessions; the thread) and `permission.escalation`
  (escalation detection or the agent's own flag, critical; the check) are one-offs:
  each occurrence is its own alert, with no resolve message.

Severity is the alert's own where it has one.
A manual run failing is not an alert (its runner sees it). Conditions are checked on the
event that may clear them (a server's status, a run completing) and every minute by the
`notifications.sweep` task (a thread stepping again publishes nothing on `global`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from automations.models import DirectiveExecution, KnowledgeEntry
from mcps.models import IngestKey, MCPServer
from threads.models import Thread

if TYPE_CHECKING:
    from notifications.models import Alert

SEVERITIES = ("info", "warn", "critical")
RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Raised:
    """An event that raises (or repeats) the alert of its key."""

    kind: str
    subject: str
    severity: str
    title: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    thread_id: str | None = None
    mcp_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"

    def team_id(self) -> int | None:
        """The alert's team: its thread's, else its server's, where known."""
        if self.thread_id:
            team = Thread.objects.filter(id=self.thread_id).values_list("team_id", flat=True).first()
            if team is not None:
                return int(team)
        return server_team(self.mcp_id) if self.mcp_id else None


@dataclass(frozen=True)
class Recheck:
    """An event after which these open alerts may have cleared."""

    keys: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()


Signal = Raised | Recheck


def server_team(mcp_id: str) -> int | None:
    """A server's team: the one team its active ingest keys belong to (none if several)."""
    teams = set(
        IngestKey.objects.filter(mcp_id=mcp_id, revoked_at__isnull=True, team__isnull=False).values_list(
            "team_id", flat=True
        )
    )
    return teams.pop() if len(teams) == 1 else None


def _severity(value: Any, default: str) -> str:
    return value if value in RANK else default


def _details(event: dict[str, Any]) -> dict[str, Any]:
    details = event.get("details")
    return details if isinstance(details, dict) else {}


def _mcp_status(event: dict[str, Any]) -> list[Signal]:
    server, status = str(event.get("mcp_id") or ""), event.get("status")
    if not server:
        return []
    if status == MCPServer.Status.CONNECTED:
        return [Recheck(keys=(f"mcp.status:{server}", f"mcp.escalated:{server}"))]
    if status not in (MCPServer.Status.DEGRADED, MCPServer.Status.DISCONNECTED):
        return []
    if not MCPServer.objects.filter(id=server, enabled=True).exists():
        # Dropped on purpose (disabled, removed, gone from mDNS): not an outage.
        return [Recheck(keys=(f"mcp.status:{server}", f"mcp.escalated:{server}"))]
    error = str(event.get("error") or "")
    return [
        Raised(
            "mcp.status",
            server,
            "critical" if status == MCPServer.Status.DISCONNECTED else "warn",
            f"Server {server} is {status}",
            error,
            {"status": status, "error": error},
            mcp_id=server,
        )
    ]


def _own_alert(event: dict[str, Any], subject_field: str) -> list[Signal]:
    """Mission Control's own alerts (automations.events.make_alert): details hold the ids."""
    details = _details(event)
    subject = details.get(subject_field)
    if not subject:
        return []
    return [
        Raised(
            str(event["type"]),
            str(subject),
            _severity(event.get("severity"), "warn"),
            str(event.get("message") or event["type"])[:300],
            str(event.get("message") or ""),
            details,
            thread_id=details.get("thread_id"),
            mcp_id=details.get("mcp_id"),
        )
    ]


def _escalation(event: dict[str, Any]) -> list[Signal]:
    subject = event.get("check_id") or event.get("id")
    if not subject:
        return []
    who, resource, thread = event.get("user_id") or "someone", event.get("resource"), event.get("thread_id")
    rules = event.get("rules") or event.get("escalations") or []
    message = "; ".join(str(r.get("detail") or r.get("rule")) for r in rules if isinstance(r, dict))
    return [
        Raised(
            "permission.escalation",
            str(subject),
            _severity(event.get("severity"), "critical"),
            f"Permission escalation: {who} granted {resource} in thread {thread}"[:300],
            message,
            {
                k: event.get(k)
                for k in ("check_id", "thread_id", "user_id", "resource", "action")
                if k in event
            }
            | {"rules": rules},
            thread_id=thread,
        )
    ]


def _execution(event: dict[str, Any]) -> list[Signal]:
    status, execution_id = event.get("status"), event.get("execution_id")
    if not isinstance(execution_id, int):
        return []
    if status == DirectiveExecution.Status.COMPLETED:
        run = (
            DirectiveExecution.objects.filter(pk=execution_id).values_list("automation_id", flat=True).first()
        )
        keys = (f"directive.execution:automation-{run}",) if run is not None else ()
        # A run completing may be the one that did not find an anomaly again.
        return [Recheck(keys=keys, kinds=("anomaly.detected",))]
    if status != DirectiveExecution.Status.FAILED:
        return []
    run = (
        DirectiveExecution.objects.filter(pk=execution_id).values("automation_id", "automation__name").first()
    )
    if run is None or run["automation_id"] is None:
        return []  # a manual run: whoever started it sees it fail
    name, error = run["automation__name"], str(event.get("error") or "")
    return [
        Raised(
            "directive.execution",
            f"automation-{run['automation_id']}",
            "warn",
            f"Automation {name} failed (directive {event.get('directive')})"[:300],
            error,
            {"execution_id": execution_id, "automation": name, "directive": event.get("directive")},
        )
    ]


INTERPRETERS: dict[str, Callable[[dict[str, Any]], list[Signal]]] = {
    "mcp.status": _mcp_status,
    "mcp.escalated": lambda e: _own_alert(e, "mcp_id"),
    "thread.stalled": lambda e: _own_alert(e, "thread_id"),
    "thread.timed_out": lambda e: _own_alert(e, "thread_id"),
    "anomaly.detected": lambda e: _own_alert(e, "knowledge"),
    "permission.escalation": _escalation,
    "directive.execution": _execution,
}
KINDS = tuple(INTERPRETERS)
ONE_OFF = frozenset({"thread.timed_out", "permission.escalation"})


def interpret(event: dict[str, Any]) -> list[Signal]:
    """What one `global` event means for alerts: raises, rechecks, or nothing."""
    handler = INTERPRETERS.get(str(event.get("type")))
    return handler(event) if handler is not None else []


# ---------------------------------------------------------------- clearing


def _server_back(alert: Alert) -> str | None:
    server = MCPServer.objects.filter(id=alert.subject).values("status", "enabled").first()
    if server is None:
        return f"server {alert.subject} was removed"
    if not server["enabled"]:
        return f"server {alert.subject} was disabled"
    if server["status"] == MCPServer.Status.CONNECTED:
        return f"server {alert.subject} is connected again"
    return None


def _thread_moving(alert: Alert) -> str | None:
    thread = Thread.objects.filter(id=alert.subject).values("status", "stalled_at").first()
    if thread is None:
        return f"thread {alert.subject} is gone"
    if thread["status"] != Thread.Status.RUNNING:
        return f"thread {alert.subject} ended ({thread['status']})"
    if thread["stalled_at"] is None:
        return f"thread {alert.subject} is stepping again"
    return None


def _anomaly_gone(alert: Alert) -> str | None:
    entry = KnowledgeEntry.objects.filter(slug=alert.subject).values("updated_at", "source_directive").first()
    if entry is None:
        return f"the anomaly entry {alert.subject} was deleted"
    if entry["source_directive"] is None:
        return None  # nothing re-checks it: stays open
    later = (
        DirectiveExecution.objects.filter(
            directive_id=entry["source_directive"],
            status=DirectiveExecution.Status.COMPLETED,
            started_at__gt=entry["updated_at"],
        )
        .order_by("pk")
        .values_list("pk", "directive_name")
        .first()
    )
    return None if later is None else f"not found again by {later[1]} (execution {later[0]})"


def _automation_recovered(alert: Alert) -> str | None:
    automation = alert.subject.removeprefix("automation-")
    failed = alert.details.get("execution_id")
    if not automation.isdigit() or not isinstance(failed, int):
        return None
    later = (
        DirectiveExecution.objects.filter(
            automation_id=int(automation), status=DirectiveExecution.Status.COMPLETED, pk__gt=failed
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    return None if later is None else f"the automation ran successfully again (execution {later})"


CLEARS: dict[str, Callable[[Alert], str | None]] = {
    "mcp.status": _server_back,
    "mcp.escalated": _server_back,
    "thread.stalled": _thread_moving,
    "anomaly.detected": _anomaly_gone,
    "directive.execution": _automation_recovered,
}


def cleared(alert: Alert) -> str | None:
    """Why the open `alert` has cleared (its resolve message says so), or None."""
    check = CLEARS.get(alert.kind)
    return check(alert) if check is not None else None

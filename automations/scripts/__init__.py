"""Mission Control's own scripts over its database, registered on import.

A script is a Python callable registered with `@script(name, description, permissions)`
(automations.script_registry, re-exported here). It takes keyword parameters (each with a
default) and returns a JSON-able dict; a directive's `script:` step names it, and the
directive engine runs it through `run_for_each_team`, which rejects parameters the
script does not take.

Scripts read rows through the run's scope (`scope.current().threads()`, `.logs()`...):
what the person who started the run may see, or everything for a system run
(automations.scope). A `per_team` script (an analysis that writes knowledge or raises
alerts) run by the system also runs once per team first, over that team's rows alone,
so each team learns from its own data what the system learned from everyone's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from automations.scope import Scope, current, reading
from automations.script_registry import Script, _registry, get, registry, script
from logs.models import LogEntry
from missioncontrol.models import Team
from threads.models import Thread

__all__ = ["Script", "_registry", "get", "registry", "run_for_each_team", "script"]


def run_for_each_team(script: Script, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """`script.run(params)` in the current run's scope; a `per_team` script of a system
    run first runs once per team, over that team's rows, writing that team's knowledge."""
    if script.per_team and current().everything and current().team is None:
        for team in Team.objects.order_by("pk").values_list("pk", flat=True):
            with reading(Scope((team,), team)):
                script.run(params)
    return script.run(params)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, not {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
    return value


def _since(window_hours: Any) -> datetime:
    return timezone.now() - timedelta(hours=_positive("window_hours", window_hours))


def p95(values: list[float]) -> float:
    """The 95th percentile by nearest rank: the smallest value >= 95% of `values`."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


@script(
    "detect_slow_threads",
    "Finished threads that took more than `factor` (1.5) times the P95 duration of the window.",
    permissions=["read:threads"],
)
def detect_slow_threads(window_hours: float = 24, factor: float = 1.5, limit: int = 100) -> dict[str, Any]:
    since = _since(window_hours)
    factor = _positive("factor", factor)
    limit = _count("limit", limit)
    rows = (
        current()
        .threads()
        .filter(status__in=Thread.FINAL, ended_at__gte=since)
        .values_list("id", "mcp_id", "status", "started_at", "ended_at")
    )
    durations = [
        (ms, tid, mcp_id, status)
        for tid, mcp_id, status, started, ended in rows
        if (ms := (ended - started).total_seconds() * 1000) >= 0
    ]
    if not durations:
        return {"sample_size": 0, "p95_ms": None, "threshold_ms": None, "count": 0, "slow_threads": []}
    p95_ms = p95([d[0] for d in durations])
    threshold = p95_ms * factor
    slow = sorted((d for d in durations if d[0] > threshold), key=lambda d: (-d[0], d[1]))
    return {
        "sample_size": len(durations),
        "p95_ms": p95_ms,
        "threshold_ms": threshold,
        "count": len(slow),
        "slow_threads": [
            {"id": tid, "mcp_id": mcp_id, "status": status, "duration_ms": ms}
            for ms, tid, mcp_id, status in slow[:limit]
        ],
    }


@script(
    "find_permission_escalations",
    "Permission checks flagged as privilege escalations within the window, newest first.",
    permissions=["read:permissions"],
)
def find_permission_escalations(window_hours: float = 24, limit: int = 100) -> dict[str, Any]:
    found = current().checks().filter(escalation_detected=True, timestamp__gte=_since(window_hours))
    limit = _count("limit", limit)
    by_user = found.order_by("user_id").values_list("user_id").annotate(n=Count("id"))
    return {
        "count": found.count(),
        "by_user": dict(by_user),
        "escalations": [e.as_event() for e in found.order_by("-timestamp", "id")[:limit]],
    }


@script(
    "cleanup_old_logs",
    "Delete log entries older than `max_age_days`; answers how many were deleted.",
    permissions=["write:logs"],
)
def cleanup_old_logs(max_age_days: float = 30) -> dict[str, Any]:
    cutoff = timezone.now() - timedelta(days=_positive("max_age_days", max_age_days))
    # LogEntry has no relations and no delete signals: Django issues one DELETE.
    deleted, _ = current().logs().filter(timestamp__lt=cutoff).delete()
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}


@script(
    "generate_summary",
    "Threads by status, logs by level and permission denials over the window.",
    permissions=["read:threads", "read:logs", "read:permissions"],
)
def generate_summary(window_hours: float = 24) -> dict[str, Any]:
    since = _since(window_hours)
    threads = dict.fromkeys(Thread.Status.values, 0)
    scope = current()
    threads.update(
        scope.threads().filter(started_at__gte=since).order_by().values_list("status").annotate(n=Count("id"))
    )
    logs = dict.fromkeys(LogEntry.Level.values, 0)
    logs.update(
        scope.logs().filter(timestamp__gte=since).order_by().values_list("level").annotate(n=Count("id"))
    )
    permissions = (
        scope.checks()
        .filter(timestamp__gte=since)
        .aggregate(
            checks=Count("id"),
            denials=Count("id", filter=Q(granted=False)),
            escalations=Count("id", filter=Q(escalation_detected=True)),
        )
    )
    return {
        "since": since.isoformat(),
        "threads": {"total": sum(threads.values()), "by_status": threads},
        "logs": {"total": sum(logs.values()), "by_level": logs},
        "permissions": permissions,
    }


# Mission Control's own maintenance and analysis scripts register themselves on import.
from automations.scripts import anomalies, healing, health, patterns, reports, retention  # noqa: E402, F401

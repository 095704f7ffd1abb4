"""Thread health: stalled threads (monitor_thread_health) and stale sessions (cleanup_stale_sessions)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from automations import events
from automations.scope import current
from automations.script_registry import script
from automations.scripts.params import ago, integer, number, text
from threads.models import Thread


@script(
    "find_stalled_threads",
    "Running threads with no step for `timeout_seconds`: their ids, server and idle time.",
    permissions=["read:threads"],
)
def find_stalled_threads(timeout_seconds: float = 300, limit: int = 500) -> dict[str, Any]:
    timeout = number("timeout_seconds", timeout_seconds)
    limit = integer("limit", limit)
    now = timezone.now()
    running = current().threads().filter(status=Thread.Status.RUNNING)
    stalled = list(
        running.stalled(ago(seconds=timeout))
        .order_by("last_activity", "id")
        .values("id", "mcp_id", "last_activity", "stalled_at")[:limit]
    )
    threads = [
        {
            "id": row["id"],
            "mcp_id": row["mcp_id"],
            "last_activity": row["last_activity"].isoformat(),
            "idle_seconds": round((now - row["last_activity"]).total_seconds(), 3),
            "already_flagged": row["stalled_at"] is not None,
        }
        for row in stalled
    ]
    return {"checked": running.count(), "count": len(threads), "threads": threads, "timeout_seconds": timeout}


@script(
    "mark_thread_stalled",
    "Flag a running thread as stalled (stalled_at) and alert `thread.stalled` on global, once per stall.",
    permissions=["read:threads", "write:threads"],
)
def mark_thread_stalled(thread_id: str = "", idle_seconds: float = 0) -> dict[str, Any]:
    thread_id = text("thread_id", thread_id)
    idle = number("idle_seconds", idle_seconds, strict=False)
    # Only a thread the run may see; claimed in one UPDATE: two monitors alert once.
    threads = current().threads().filter(id=thread_id)
    flagged = threads.filter(status=Thread.Status.RUNNING, stalled_at__isnull=True).update(
        stalled_at=timezone.now()
    )
    if not flagged:
        thread = threads.only("status", "stalled_at").first()
        if thread is None:
            raise ValueError(f"no thread {thread_id!r}")
        return {"thread_id": thread_id, "status": "already_flagged" if thread.stalled_at else thread.status}
    mcp_id = threads.values_list("mcp_id", flat=True).first()
    events.alert(
        "thread.stalled",
        f"thread {thread_id} has had no step for {idle:.0f} s",
        thread_id=thread_id,
        mcp_id=mcp_id,
        idle_seconds=idle,
    )
    return {"thread_id": thread_id, "status": "stalled", "alerted": True}


@script(
    "mark_stalled_threads",
    "Find and flag every stalled thread at once (one alert each), for callers without foreach.",
    permissions=["read:threads", "write:threads"],
)
def mark_stalled_threads(timeout_seconds: float = 300, limit: int = 500) -> dict[str, Any]:
    found = find_stalled_threads(timeout_seconds, limit)
    marked = [
        t["id"]
        for t in found["threads"]
        if mark_thread_stalled(t["id"], t["idle_seconds"])["status"] == "stalled"
    ]
    return {**found, "marked": marked}


@script(
    "log_health_check",
    "Log one line summing up a health check (INFO, or WARN when something is stalled or failed).",
    permissions=["write:logs"],
)
def log_health_check(checked: int = 0, stalled: int = 0, failed: int = 0) -> dict[str, Any]:
    checked, stalled, failed = (
        integer(n, v) for n, v in (("checked", checked), ("stalled", stalled), ("failed", failed))
    )
    healthy = max(0, checked - stalled - failed)
    level = "WARN" if stalled or failed else "INFO"
    message = f"thread health: {healthy} healthy, {stalled} stalled, {failed} failed of {checked} running"
    log_id = events.log(level, message, healthy=healthy, stalled=stalled, failed=failed, checked=checked)
    return {"healthy": healthy, "stalled": stalled, "failed": failed, "level": level, "log_id": log_id}


@script(
    "cleanup_stale_sessions",
    "End threads running or paused for more than `timeout_hours` as error (reason: timeout), "
    "with a log line and a `thread.timed_out` alert each.",
    permissions=["read:threads", "write:threads", "write:logs"],
)
def cleanup_stale_sessions(timeout_hours: float = 24, limit: int = 1000) -> dict[str, Any]:
    hours = number("timeout_hours", timeout_hours)
    limit = integer("limit", limit)
    overdue = list(
        current()
        .threads()
        .overdue(ago(hours=hours))
        .order_by("started_at", "id")
        .values("id", "mcp_id", "started_at")[:limit]
    )
    if not overdue:
        return {"ended": 0, "threads": [], "timeout_hours": hours}
    events.end_threads({row["id"]: Thread.Status.ERROR for row in overdue})
    now = timezone.now()
    ended = [
        {
            "id": r["id"],
            "mcp_id": r["mcp_id"],
            "age_hours": round((now - r["started_at"]).total_seconds() / 3600, 3),
        }
        for r in overdue
    ]
    events.logs(
        [
            {
                "level": "WARN",
                "message": f"thread {t['id']} ended as error: timeout after {t['age_hours']:.1f} h "
                f"(limit {hours:g} h)",
                "thread_id": t["id"],
                "context": {"reason": "timeout", "age_hours": t["age_hours"], "timeout_hours": hours},
            }
            for t in ended
        ]
    )
    events.publish(
        [
            events.make_alert(
                "thread.timed_out",
                f"thread {t['id']} ended as error after {t['age_hours']:.1f} h",
                thread_id=t["id"],
                mcp_id=t["mcp_id"],
                reason="timeout",
                age_hours=t["age_hours"],
            )
            for t in ended
        ]
    )
    return {"ended": len(ended), "threads": ended, "timeout_hours": hours}

"""Activity over time for the dashboard: events, errors and step latency per minute.

Read from the stored rows, so a dashboard opened now starts with the last half hour
already drawn; the page then carries the series on from the live WebSocket events.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone

# Rows read for the latency percentiles at most: enough for a half hour of a busy fleet,
# bounded so the page never waits on a scan.
MAX_LATENCY_SAMPLES = 20_000


class Minute(TypedDict):
    t: int  # unix seconds of the minute's start
    events: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The `q` quantile (0..1) of already sorted values, nearest rank; None when empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


def _per_minute(queryset: QuerySet[Any], field: str, since: datetime) -> dict[datetime, int]:
    rows = (
        queryset.filter(**{f"{field}__gte": since})
        .annotate(minute=TruncMinute(field))
        .values("minute")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["minute"]: row["n"] for row in rows}


def activity(
    threads: QuerySet[Any],
    steps: QuerySet[Any],
    logs: QuerySet[Any],
    permissions: QuerySet[Any],
    minutes: int = 30,
) -> list[Minute]:
    """One row per minute of the last `minutes`: events stored, errors among them, and the
    p50/p95/p99 of the steps' durations (ms). The querysets are the rows the viewer may see."""
    now = timezone.now()
    since = (now - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    events: dict[datetime, int] = defaultdict(int)
    errors: dict[datetime, int] = defaultdict(int)
    for queryset, field in ((threads, "started_at"), (steps, "timestamp"), (logs, "timestamp")):
        for minute, n in _per_minute(queryset, field, since).items():
            events[minute] += n
    for minute, n in _per_minute(permissions, "timestamp", since).items():
        events[minute] += n
    for queryset, field in (
        (logs.filter(level="ERROR"), "timestamp"),
        (steps.filter(status="error"), "timestamp"),
        (threads.filter(status="error"), "started_at"),
    ):
        for minute, n in _per_minute(queryset, field, since).items():
            errors[minute] += n
    durations: dict[datetime, list[float]] = defaultdict(list)
    samples = (
        steps.filter(timestamp__gte=since, duration_ms__isnull=False)
        .order_by("-timestamp")
        .values_list("timestamp", "duration_ms")[:MAX_LATENCY_SAMPLES]
    )
    for at, duration in samples:
        durations[at.replace(second=0, microsecond=0)].append(duration)
    rows: list[Minute] = []
    minute = since
    while minute <= now:
        values = sorted(durations.get(minute, []))
        rows.append(
            {
                "t": int(minute.timestamp()),
                "events": events.get(minute, 0),
                "errors": errors.get(minute, 0),
                "p50": percentile(values, 0.50),
                "p95": percentile(values, 0.95),
                "p99": percentile(values, 0.99),
            }
        )
        minute += timedelta(minutes=1)
    return rows


def error_rate(rows: list[Minute], last: int = 5) -> float:
    """Errors among the events of the last `last` minutes, as a fraction (0 when idle)."""
    recent = rows[-last:]
    total = sum(r["events"] for r in recent)
    return sum(r["errors"] for r in recent) / total if total else 0.0

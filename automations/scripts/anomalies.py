"""Anomaly detection (detect_anomalies): slow threads, and error- and denial-rate spikes.

Each anomaly is stored as a KnowledgeEntry of category `alert` (keyed, so a re-run
updates it) and published as an `anomaly.detected` event on `global` when it is new,
or when it comes back after a quiet lookback window: the monitor runs every minute and
must not repeat the same alert every minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from automations import events
from automations.models import KnowledgeEntry
from automations.scope import current
from automations.scripts import script
from automations.scripts.params import integer, number
from logs.models import LogEntry
from missioncontrol.stats import nearest_rank
from threads.models import Thread

DIRECTIVE = "detect_anomalies"


@dataclass(frozen=True)
class Anomaly:
    key: str  # the knowledge entry's slug
    kind: str
    title: str
    content: str
    confidence: float
    details: dict[str, Any]


def remember(
    anomalies: list[Anomaly], quiet: timedelta, source_directive: str | None
) -> list[dict[str, Any]]:
    """Store each anomaly as an alert entry; publish those new or back after `quiet`."""
    cutoff = timezone.now() - quiet
    slugs = {a.key: KnowledgeEntry.objects.slug_for(a.key) for a in anomalies}
    previous = dict(KnowledgeEntry.objects.filter(slug__in=slugs.values()).values_list("slug", "updated_at"))
    out, fresh = [], []
    for anomaly in anomalies:
        KnowledgeEntry.objects.record(
            anomaly.key,
            title=anomaly.title,
            category=KnowledgeEntry.Category.ALERT,
            content=anomaly.content,
            confidence=anomaly.confidence,
            source_directive=source_directive,
        )
        last = previous.get(slugs[anomaly.key])
        alerted = last is None or last < cutoff
        if alerted:
            fresh.append(
                events.make_alert(
                    "anomaly.detected",
                    anomaly.title,
                    severity="warn",
                    thread_id=anomaly.details.get("thread_id"),
                    mcp_id=anomaly.details.get("mcp_id"),
                    kind=anomaly.kind,
                    knowledge=slugs[anomaly.key],
                    **{k: v for k, v in anomaly.details.items() if k not in ("thread_id", "mcp_id")},
                )
            )
        out.append(
            {
                "key": slugs[anomaly.key],
                "kind": anomaly.kind,
                "title": anomaly.title,
                "alerted": alerted,
                **anomaly.details,
            }
        )
    events.publish(fresh)
    return out


def slow_threads(
    now: datetime, lookback: timedelta, baseline: timedelta, factor: float, min_baseline: int
) -> tuple[list[Anomaly], dict[str, Any]]:
    """Threads ended in the lookback window that took more than `factor` x the baseline's P95."""
    threads = current().threads()
    durations = list(
        threads.finished_between(now - baseline).with_duration().values_list("duration", flat=True)
    )
    durations = [d for d in durations if d is not None and d >= 0]
    if len(durations) < min_baseline:
        return [], {"baseline_size": len(durations), "p95_ms": None, "threshold_ms": None}
    p95 = nearest_rank(durations, 0.95)
    threshold = p95 * factor
    slow = (
        threads.finished_between(now - lookback)
        .with_duration()
        .filter(duration__gt=threshold)
        .order_by("-duration", "id")
        .values_list("id", "mcp_id", "duration")
    )
    found = [
        Anomaly(
            key=f"anomaly-slow-thread-{tid}",
            kind="slow_thread",
            title=f"Slow thread {tid}",
            content=(
                f"Thread {tid} on {mcp_id or 'an unknown server'} took {ms:.0f} ms, more than "
                f"{factor:g} x the P95 of recent durations ({p95:.0f} ms over {len(durations)} threads)."
            ),
            confidence=min(0.99, 0.5 + 0.5 * min(1.0, len(durations) / 100)),
            details={
                "thread_id": tid,
                "mcp_id": mcp_id,
                "duration_ms": ms,
                "p95_ms": p95,
                "threshold_ms": threshold,
            },
        )
        for tid, mcp_id, ms in slow
    ]
    return found, {"baseline_size": len(durations), "p95_ms": p95, "threshold_ms": threshold}


@dataclass(frozen=True)
class Rate:
    name: str
    label: str
    queryset: QuerySet[Any]
    time_field: str
    bad: Q


def rates() -> list[Rate]:
    scope = current()
    return [
        Rate(
            "thread_error_rate",
            "Thread error rate",
            scope.threads().filter(status__in=Thread.FINAL),
            "ended_at",
            Q(status=Thread.Status.ERROR),
        ),
        Rate(
            "log_error_rate",
            "Log error rate",
            scope.logs(),
            "timestamp",
            Q(level=LogEntry.Level.ERROR),
        ),
        Rate(
            "denial_rate",
            "Permission denial rate",
            scope.checks(),
            "timestamp",
            Q(granted=False),
        ),
    ]


def _ratio(rate: Rate, since: datetime, until: datetime) -> tuple[int, int]:
    window = {f"{rate.time_field}__gte": since, f"{rate.time_field}__lt": until}
    found = rate.queryset.filter(**window).aggregate(total=Count("pk"), bad=Count("pk", filter=rate.bad))
    return found["bad"], found["total"]


def rate_spikes(
    now: datetime,
    lookback: timedelta,
    baseline: timedelta,
    spike_factor: float,
    min_delta: float,
    min_samples: int,
) -> tuple[list[Anomaly], dict[str, Any]]:
    """Rates of the lookback window above `spike_factor` x (and `min_delta` over) the baseline's.

    The baseline is the window before the lookback one, so a spike does not raise its own bar.
    """
    found: list[Anomaly] = []
    measured: dict[str, Any] = {}
    for rate in rates():
        bad, total = _ratio(rate, now - lookback, now + timedelta(seconds=1))
        base_bad, base_total = _ratio(rate, now - lookback - baseline, now - lookback)
        current = bad / total if total else 0.0
        usual = base_bad / base_total if base_total else 0.0
        measured[rate.name] = {
            "current": round(current, 4),
            "baseline": round(usual, 4),
            "samples": total,
            "baseline_samples": base_total,
        }
        if total < min_samples or current < usual * spike_factor or current - usual < min_delta:
            continue
        found.append(
            Anomaly(
                key=f"anomaly-{rate.name.replace('_', '-')}-spike",
                kind=f"{rate.name}_spike",
                title=f"{rate.label} spike",
                content=(
                    f"{rate.label} was {current:.1%} ({bad} of {total}) over the last "
                    f"{lookback.total_seconds() / 60:g} minutes, against {usual:.1%} ({base_bad} of "
                    f"{base_total}) in the {baseline.total_seconds() / 3600:g} hours before."
                ),
                confidence=min(0.99, 0.5 + 0.5 * min(1.0, total / 100)),
                details={"metric": rate.name, **measured[rate.name]},
            )
        )
    return found, measured


@script(
    "detect_slow_thread_anomalies",
    "Threads that ended in the last `lookback_minutes` slower than `factor` x the P95 of the "
    "baseline's durations; each stored as an alert and published as anomaly.detected.",
    permissions=["read:threads", "write:knowledge"],
    per_team=True,
)
def detect_slow_thread_anomalies(
    lookback_minutes: float = 10,
    baseline_hours: float = 24,
    factor: float = 1.5,
    min_baseline: int = 20,
    source_directive: str = DIRECTIVE,
) -> dict[str, Any]:
    lookback = timedelta(minutes=number("lookback_minutes", lookback_minutes))
    baseline = timedelta(hours=number("baseline_hours", baseline_hours))
    found, measured = slow_threads(
        timezone.now(),
        lookback,
        baseline,
        number("factor", factor),
        integer("min_baseline", min_baseline, minimum=1),
    )
    anomalies = remember(found, lookback, source_directive)
    return {"count": len(anomalies), "anomalies": anomalies, **measured}


@script(
    "detect_rate_spikes",
    "Thread error, log error and permission denial rates of the last `lookback_minutes` against "
    "the `baseline_hours` before; each spike stored as an alert and published as anomaly.detected.",
    permissions=["read:threads", "read:logs", "read:permissions", "write:knowledge"],
    per_team=True,
)
def detect_rate_spikes(
    lookback_minutes: float = 10,
    baseline_hours: float = 24,
    spike_factor: float = 2.0,
    min_delta: float = 0.05,
    min_samples: int = 10,
    source_directive: str = DIRECTIVE,
) -> dict[str, Any]:
    lookback = timedelta(minutes=number("lookback_minutes", lookback_minutes))
    found, measured = rate_spikes(
        timezone.now(),
        lookback,
        timedelta(hours=number("baseline_hours", baseline_hours)),
        number("spike_factor", spike_factor),
        number("min_delta", min_delta, strict=False),
        integer("min_samples", min_samples, minimum=1),
    )
    anomalies = remember(found, lookback, source_directive)
    return {"count": len(anomalies), "anomalies": anomalies, "rates": measured}


def recent_anomalies(user: Any, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
    """The latest anomaly entries `user` may see, newest first (missioncontrol__list_anomalies)."""
    found = KnowledgeEntry.objects.visible_to(user).filter(
        category=KnowledgeEntry.Category.ALERT, slug__startswith="anomaly-"
    )
    if kind:
        found = found.filter(slug__startswith=f"anomaly-{kind.replace('_', '-')}")
    return [
        {
            "slug": e.slug,
            "title": e.title,
            "content": e.content,
            "confidence": e.confidence,
            "source_directive": e.source_directive.name if e.source_directive else None,
            "detected_at": e.created_at.isoformat(),
            "updated_at": e.updated_at.isoformat(),
        }
        for e in found.select_related("source_directive").order_by("-updated_at", "slug")[:limit]
    ]


@script(
    "anomaly_summary",
    "Sum up an anomaly check: one log line (WARN if anything was found), and the total count.",
    permissions=["write:logs"],
)
def anomaly_summary(slow: int = 0, spikes: int = 0) -> dict[str, Any]:
    slow, spikes = integer("slow", slow), integer("spikes", spikes)
    count = slow + spikes
    level = "WARN" if count else "INFO"
    log_id = events.log(
        level, f"anomalies: {slow} slow thread(s), {spikes} rate spike(s)", slow=slow, spikes=spikes
    )
    return {"count": count, "slow": slow, "spikes": spikes, "log_id": log_id}

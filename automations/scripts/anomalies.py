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

from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from automations import events
from automations.models import KnowledgeEntry
from automations.scope import current
from automations.script_registry import script
from automations.scripts.params import integer, number
from logs.models import LogEntry
from mcps.models import AGGREGATE_ID
from missioncontrol.stats import nearest_rank_by
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


# Whose durations a thread is judged against: "<kind>:<name>". Directive runs (the engine's,
# execution_context.directive; Kiwi's, execution_context.kiwi.directive) by directive;
# sessions on the aggregated endpoint (/mcp, mcp_proxy), which last as long as their agent
# stays, apart; every other thread by its server.
POPULATION = Case(
    When(
        execution_context__has_key="directive",
        then=Concat(Value("directive:"), KeyTextTransform("directive", "execution_context")),
    ),
    When(
        execution_context__kiwi__has_key="directive",
        then=Concat(
            Value("directive:kiwi:"), KeyTextTransform("directive", KeyTransform("kiwi", "execution_context"))
        ),
    ),
    When(mcp_id=AGGREGATE_ID, then=Value(f"session:{AGGREGATE_ID}")),
    default=Concat(Value("server:"), Coalesce(F("mcp_id"), Value(""))),
    output_field=CharField(),
)
# A population's kind (the part before the first ":"), the same Case without the names.
KIND = Case(
    When(execution_context__has_key="directive", then=Value("directive")),
    When(execution_context__kiwi__has_key="directive", then=Value("directive")),
    When(mcp_id=AGGREGATE_ID, then=Value("session")),
    default=Value("server"),
    output_field=CharField(),
)


@dataclass(frozen=True)
class Baseline:
    """What a population's threads are judged against."""

    label: str  # whose durations, in words
    size: int
    p95: float
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.label, "size": self.size, "p95_ms": self.p95, "threshold_ms": self.threshold}


def _describe(population: str) -> str:
    kind, _, name = population.partition(":")
    if kind == "server":
        return f"server {name or '(none)'}"
    if kind == "session":
        return "sessions on the aggregated endpoint"
    return f"directive {name}"


def baselines(
    since: datetime, factor: float, min_baseline: int, min_excess_ms: float = 0.0
) -> tuple[dict[str, Baseline], dict[str, Any]]:
    """Each population's baseline: the P95 of its own threads ended since `since`, or, with
    fewer than `min_baseline` of them, the P95 of all threads of its kind (servers,
    sessions, directives); none if that is too small as well. Two grouped queries,
    however many populations.

    The threshold is `factor` x the P95, and at least `min_excess_ms` over it: among
    100 ms threads, a 300 ms one (a first call warming up, a busy machine) is jitter,
    not an incident."""

    def threshold(p95: float) -> float:
        return max(p95 * factor, p95 + min_excess_ms)

    # The run's scope: a person's run judges their teams' threads (automations/scope.py).
    recent = current().threads().finished_between(since).with_duration().filter(duration__gte=0)
    own = nearest_rank_by(recent, F("duration"), POPULATION, 0.95)
    kinds = nearest_rank_by(recent, F("duration"), KIND, 0.95)
    found: dict[str, Baseline] = {}
    for population, (size, p95) in own.items():
        kind = population.partition(":")[0]
        if size >= min_baseline:
            found[population] = Baseline(_describe(population), size, p95, threshold(p95))
        elif kinds.get(kind, (0, 0.0))[0] >= min_baseline:
            kind_size, kind_p95 = kinds[kind]
            label = f"all {kind} threads ({_describe(population)} has {size}, too few to judge)"
            found[population] = Baseline(label, kind_size, kind_p95, threshold(kind_p95))
    measured = {
        "baseline_size": sum(size for size, _ in own.values()),
        "populations": {
            population: found[population].as_dict()
            if population in found
            else {"baseline": None, "size": size, "p95_ms": None, "threshold_ms": None}
            for population, (size, _) in sorted(own.items())
        },
    }
    return found, measured


def slow_threads(
    now: datetime,
    lookback: timedelta,
    baseline: timedelta,
    factor: float,
    min_baseline: int,
    min_excess_ms: float = 0.0,
) -> tuple[list[Anomaly], dict[str, Any]]:
    """Threads ended in the lookback window that took more than `factor` x the P95 of their
    population's durations over the baseline window (see `baselines`)."""
    found_baselines, measured = baselines(now - baseline, factor, min_baseline, min_excess_ms)
    if not found_baselines:
        return [], measured
    lowest = min(b.threshold for b in found_baselines.values())
    candidates = (
        current()
        .threads()
        .finished_between(now - lookback)
        .with_duration()
        .annotate(population=POPULATION)
        .filter(duration__gt=lowest)
        .order_by("-duration", "id")
        .values_list("id", "mcp_id", "duration", "population")
    )
    found = []
    for tid, mcp_id, ms, population in candidates:
        judged = found_baselines.get(population)
        if judged is None or ms <= judged.threshold:
            continue
        found.append(
            Anomaly(
                key=f"anomaly-slow-thread-{tid}",
                kind="slow_thread",
                title=f"Slow thread {tid}",
                content=(
                    f"Thread {tid} on {mcp_id or 'an unknown server'} took {ms:.0f} ms, more than "
                    f"{factor:g} x (and {min_excess_ms:g} ms over) the P95 of the recent durations of "
                    f"{judged.label} ({judged.p95:.0f} ms over {judged.size} threads)."
                ),
                confidence=min(0.99, 0.5 + 0.5 * min(1.0, judged.size / 100)),
                details={
                    "thread_id": tid,
                    "mcp_id": mcp_id,
                    "population": population,
                    "baseline": judged.label,
                    "duration_ms": ms,
                    "p95_ms": judged.p95,
                    "threshold_ms": judged.threshold,
                },
            )
        )
    return found, measured


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
    A rate needs `min_samples` in both windows: with fewer in the baseline (a new install,
    a quiet day) there is no usual rate to spike from, and any error would be one.
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
        if (
            total < min_samples
            or base_total < min_samples
            or current < usual * spike_factor
            or current - usual < min_delta
        ):
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
    "Threads that ended in the last `lookback_minutes` slower than `factor` x (and `min_excess_ms` "
    "over) the P95 of their population's durations (their server's, directive's, or sessions') in "
    "the baseline; each stored as an alert and published as anomaly.detected.",
    permissions=["read:threads", "write:knowledge"],
    per_team=True,
)
def detect_slow_thread_anomalies(
    lookback_minutes: float = 10,
    baseline_hours: float = 24,
    factor: float = 1.5,
    min_baseline: int = 20,
    min_excess_ms: float = 1000,
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
        number("min_excess_ms", min_excess_ms, strict=False),
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

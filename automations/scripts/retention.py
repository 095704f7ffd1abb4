"""Log retention (optimize_log_retention): what the logs hold, what to drop, and dropping it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Case, CharField, Count, Value, When
from django.utils import timezone

from automations.models import KnowledgeEntry
from automations.scope import current
from automations.script_registry import script
from automations.scripts.params import number
from logs.models import LogEntry

DIRECTIVE = "optimize_log_retention"
# Age buckets, upper bounds in days; the last one is open.
AGES = ((1, "<1d"), (7, "1-7d"), (30, "7-30d"))
OLDEST = ">30d"


def profile() -> dict[str, Any]:
    """Log counts by level, by service and by age bucket, in one grouped query."""
    now = timezone.now()
    age = Case(
        *[When(timestamp__gte=now - timedelta(days=days), then=Value(label)) for days, label in AGES],
        default=Value(OLDEST),
        output_field=CharField(),
    )
    rows = (
        current()
        .logs()
        .order_by()
        .annotate(age=age)
        .values_list("level", "service", "age")
        .annotate(n=Count("id"))
    )
    by_level: dict[str, int] = dict.fromkeys(LogEntry.Level.values, 0)
    by_service: dict[str, int] = {}
    by_age: dict[str, int] = dict.fromkeys([label for _, label in AGES] + [OLDEST], 0)
    by_level_age: dict[str, dict[str, int]] = {level: dict.fromkeys(by_age, 0) for level in by_level}
    total = 0
    for level, service, bucket, n in rows:
        total += n
        by_level[level] = by_level.get(level, 0) + n
        by_service[service] = by_service.get(service, 0) + n
        by_age[bucket] += n
        by_level_age.setdefault(level, dict.fromkeys(by_age, 0))[bucket] += n
    return {
        "total": total,
        "by_level": by_level,
        "by_service": dict(sorted(by_service.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_age": by_age,
        "by_level_and_age": by_level_age,
    }


@script(
    "analyze_log_retention",
    "Log counts by level, service and age; how many DEBUG lines are older than "
    "`debug_max_age_days` (reclaimable), and a recommendation stored as knowledge.",
    permissions=["read:logs", "write:knowledge"],
    per_team=True,
)
def analyze_log_retention(debug_max_age_days: float = 7, source_directive: str = DIRECTIVE) -> dict[str, Any]:
    days = number("debug_max_age_days", debug_max_age_days)
    found = profile()
    cutoff = timezone.now() - timedelta(days=days)
    reclaimable = current().logs().filter(level=LogEntry.Level.DEBUG, timestamp__lt=cutoff).count()
    share = reclaimable / found["total"] if found["total"] else 0.0
    noisiest = next(iter(found["by_service"]), None)
    if reclaimable:
        recommendation = (
            f"Delete the {reclaimable} DEBUG log lines older than {days:g} days "
            f"({share:.0%} of {found['total']}): they are rarely read after a week."
        )
    else:
        recommendation = f"Nothing to reclaim: no DEBUG log line is older than {days:g} days."
    if noisiest:
        recommendation += f" The noisiest service is {noisiest} ({found['by_service'][noisiest]} lines)."
    KnowledgeEntry.objects.record(
        "log-retention-recommendation",
        title="Log retention recommendation",
        category=KnowledgeEntry.Category.OPTIMIZATION,
        content=recommendation,
        confidence=0.9 if found["total"] >= 100 else 0.6,
        source_directive=source_directive,
    )
    return {
        **found,
        "debug_max_age_days": days,
        "reclaimable": reclaimable,
        "recommendation": recommendation,
    }


@script(
    "cleanup_debug_logs",
    "Delete DEBUG log lines older than `max_age_days`; answers how many were deleted.",
    permissions=["write:logs"],
)
def cleanup_debug_logs(max_age_days: float = 7) -> dict[str, Any]:
    cutoff = timezone.now() - timedelta(days=number("max_age_days", max_age_days))
    # LogEntry has no relations and no delete signals: Django issues one DELETE.
    deleted, _ = current().logs().filter(level=LogEntry.Level.DEBUG, timestamp__lt=cutoff).delete()
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}

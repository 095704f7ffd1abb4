"""Pattern analysis (analyze_patterns, analyze_permission_patterns), written to the knowledge base.

Every finding is a KnowledgeEntry keyed by what it is about (a user and resource, a
server, an error's normalised message), so a re-run refreshes its numbers instead of
adding a duplicate.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Q
from django.utils import timezone

from automations.models import KnowledgeEntry
from automations.scope import current
from automations.script_registry import script
from automations.scripts.params import integer, number
from logs.models import LogEntry
from mcps.models import HealthCheck
from missioncontrol.stats import percentiles_by

DIRECTIVE = "analyze_patterns"
PERMISSIONS_DIRECTIVE = "analyze_permission_patterns"
MAX_ERROR_LINES = 50_000  # the newest; enough to see the clusters

# What varies between two occurrences of one error: ids, numbers, quoted values, paths.
_NORMALISERS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b(?:0x)?[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"(?:/[\w.-]+){2,}"), "<path>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise(message: str) -> str:
    """`message` with its variable parts replaced, so occurrences of one error compare equal."""
    text = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, replacement in _NORMALISERS:
        text = pattern.sub(replacement, text)
    return text.strip()[:300]


def _key(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]


def _confidence(samples: int) -> float:
    return round(min(0.95, 0.5 + samples / 200), 3)


@script(
    "analyze_permission_patterns",
    "Denials grouped by user, resource and action, and escalations by user, over the window; "
    "repeated denials stored as best practices, escalations as alerts.",
    permissions=["read:permissions", "write:knowledge"],
    per_team=True,
)
def analyze_permission_patterns(
    window_hours: float = 168, min_denials: int = 3, source_directive: str = PERMISSIONS_DIRECTIVE
) -> dict[str, Any]:
    since = timezone.now() - timedelta(hours=number("window_hours", window_hours))
    least = integer("min_denials", min_denials, minimum=1)
    checks = current().checks().filter(timestamp__gte=since).order_by()
    by_user = {
        row["user_id"]: {
            "checks": row["checks"],
            "denials": row["denials"],
            "escalations": row["escalations"],
        }
        for row in checks.values("user_id").annotate(
            checks=Count("id"),
            denials=Count("id", filter=Q(granted=False)),
            escalations=Count("id", filter=Q(escalation_detected=True)),
        )
    }
    denied = (
        checks.filter(granted=False)
        .values("user_id", "resource", "action")
        .annotate(n=Count("id"))
        .filter(n__gte=least)
        .order_by("-n", "user_id", "resource", "action")
    )
    patterns = []
    for row in denied:
        user, resource, action, n = row["user_id"], row["resource"], row["action"], row["n"]
        total = checks.filter(user_id=user, resource=resource, action=action).count()
        slug = f"permission-denials-{_key(user, resource, action)}"
        KnowledgeEntry.objects.record(
            slug,
            title=f"Repeated denials: {user or 'anonymous'} {action} {resource}",
            category=KnowledgeEntry.Category.BEST_PRACTICE,
            content=(
                f"{user or 'An anonymous principal'} was denied {action} on {resource} {n} times out of "
                f"{total} checks. Either grant it through a policy, or change the agent so it stops asking."
            ),
            confidence=_confidence(n),
            source_directive=source_directive,
        )
        patterns.append(
            {
                "user_id": user,
                "resource": resource,
                "action": action,
                "denials": n,
                "checks": total,
                "key": slug,
            }
        )
    escalations = []
    for user, stats in sorted(by_user.items()):
        if not stats["escalations"]:
            continue
        slug = f"permission-escalations-{_key(user)}"
        KnowledgeEntry.objects.record(
            slug,
            title=f"Privilege escalations by {user or 'anonymous'}",
            category=KnowledgeEntry.Category.ALERT,
            content=f"{user or 'An anonymous principal'} triggered {stats['escalations']} escalation checks "
            f"among {stats['checks']} permission checks.",
            confidence=_confidence(stats["escalations"] * 10),
            source_directive=source_directive,
        )
        escalations.append({"user_id": user, "escalations": stats["escalations"], "key": slug})
    return {
        "since": since.isoformat(),
        "by_user": by_user,
        "denial_patterns": patterns,
        "escalations": escalations,
    }


@script(
    "analyze_duration_patterns",
    "Thread duration distribution (p50/p95/p99) by kind over the lookback, stored as a pattern.",
    permissions=["read:threads", "write:knowledge"],
    per_team=True,
)
def analyze_duration_patterns(lookback_days: float = 30, source_directive: str = DIRECTIVE) -> dict[str, Any]:
    days = number("lookback_days", lookback_days)
    since = timezone.now() - timedelta(days=days)
    by_kind = percentiles_by(
        current().threads().finished_between(since).with_duration().with_kind(), F("duration"), F("kind")
    )
    if by_kind:
        lines = [
            f"{kind}: p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms, p99 {s['p99']:.0f} ms "
            f"({s['count']} threads)"
            for kind, s in by_kind.items()
        ]
        KnowledgeEntry.objects.record(
            "pattern-thread-durations",
            title="Thread duration distribution",
            category=KnowledgeEntry.Category.PATTERN,
            content=f"Over the last {days:g} days, by thread kind: " + "; ".join(lines) + ".",
            confidence=_confidence(sum(s["count"] for s in by_kind.values())),
            source_directive=source_directive,
        )
    return {"by_kind": by_kind}


@script(
    "analyze_denial_patterns",
    "The most denied resources over the lookback, stored as a pattern.",
    permissions=["read:permissions", "write:knowledge"],
    per_team=True,
)
def analyze_denial_patterns(
    lookback_days: float = 30, top: int = 5, source_directive: str = DIRECTIVE
) -> dict[str, Any]:
    days = number("lookback_days", lookback_days)
    since = timezone.now() - timedelta(days=days)
    rows = list(
        current()
        .checks()
        .filter(timestamp__gte=since, granted=False)
        .order_by()
        .values("resource")
        .annotate(n=Count("id"), users=Count("user_id", distinct=True))
        .order_by("-n", "resource")[: integer("top", top, minimum=1)]
    )
    if rows:
        KnowledgeEntry.objects.record(
            "pattern-permission-denials",
            title="Most denied resources",
            category=KnowledgeEntry.Category.PATTERN,
            content=f"Over the last {days:g} days: "
            + "; ".join(f"{r['resource']} denied {r['n']} times to {r['users']} principal(s)" for r in rows)
            + ".",
            confidence=_confidence(sum(r["n"] for r in rows)),
            source_directive=source_directive,
        )
    return {"resources": rows}


@script(
    "analyze_connection_failures",
    "Failed health probes per server over the lookback; a server failing often is stored as a pattern.",
    permissions=["read:mcps", "write:knowledge"],
)
def analyze_connection_failures(
    lookback_days: float = 30, min_failures: int = 3, source_directive: str = DIRECTIVE
) -> dict[str, Any]:
    days = number("lookback_days", lookback_days)
    least = integer("min_failures", min_failures, minimum=1)
    since = timezone.now() - timedelta(days=days)
    rows = (
        HealthCheck.objects.filter(checked_at__gte=since)
        .order_by()
        .values("server_id")
        .annotate(probes=Count("id"), failures=Count("id", filter=Q(ok=False)))
        .order_by("server_id")
    )
    servers = {r["server_id"]: {"probes": r["probes"], "failures": r["failures"]} for r in rows}
    flagged = []
    for server_id, stats in servers.items():
        if stats["failures"] < least:
            continue
        errors = list(
            HealthCheck.objects.filter(server_id=server_id, checked_at__gte=since, ok=False)
            .exclude(error="")
            .order_by()
            .values("error")
            .annotate(n=Count("id"))
            .order_by("-n", "error")[:3]
        )
        share = stats["failures"] / stats["probes"]
        KnowledgeEntry.objects.record(
            f"pattern-connection-failures-{server_id}",
            title=f"Connection failures of {server_id}",
            category=KnowledgeEntry.Category.PATTERN,
            content=f"{server_id} failed {stats['failures']} of {stats['probes']} health probes "
            f"({share:.0%}) over the last {days:g} days"
            + (": most often " + "; ".join(f"{e['error']} ({e['n']})" for e in errors) if errors else "")
            + ".",
            confidence=_confidence(stats["probes"]),
            source_directive=source_directive,
            shared=True,  # the health of shared servers: what every user sees anyway
        )
        flagged.append(server_id)
    return {"servers": servers, "flagged": flagged}


@script(
    "analyze_error_clusters",
    "ERROR log lines over the lookback clustered by normalised message (numbers, ids, paths, quoted "
    "values masked); each cluster of `min_size` or more stored as a pattern.",
    permissions=["read:logs", "write:knowledge"],
    per_team=True,
)
def analyze_error_clusters(
    lookback_days: float = 30, min_size: int = 3, source_directive: str = DIRECTIVE
) -> dict[str, Any]:
    days = number("lookback_days", lookback_days)
    least = integer("min_size", min_size, minimum=1)
    since = timezone.now() - timedelta(days=days)
    lines = (
        current()
        .logs()
        .filter(level=LogEntry.Level.ERROR, timestamp__gte=since)
        .order_by("-timestamp")
        .values_list("message", "service")[:MAX_ERROR_LINES]
    )
    clusters: dict[str, dict[str, Any]] = {}
    for message, service in lines:
        shape = normalise(message)
        cluster = clusters.setdefault(
            shape, {"pattern": shape, "count": 0, "services": set(), "example": message[:300]}
        )
        cluster["count"] += 1
        cluster["services"].add(service)
    found = sorted(
        ({**c, "services": sorted(c["services"])} for c in clusters.values() if c["count"] >= least),
        key=lambda c: (-c["count"], c["pattern"]),
    )
    for cluster in found:
        cluster["key"] = f"pattern-error-{_key(cluster['pattern'])}"
        KnowledgeEntry.objects.record(
            cluster["key"],
            title=f"Error cluster: {cluster['pattern'][:200]}",
            category=KnowledgeEntry.Category.PATTERN,
            content=f"{cluster['count']} ERROR lines over the last {days:g} days from "
            f'{", ".join(cluster["services"])} share the shape "{cluster["pattern"]}", '
            f'e.g. "{cluster["example"]}".',
            confidence=_confidence(cluster["count"]),
            source_directive=source_directive,
        )
    return {"lines": sum(c["count"] for c in clusters.values()), "clusters": found}

"""The compliance report of a period: what was checked, granted, denied and escalated.

One domain function (`compliance_report`) serves the REST export
(`/api/permissions/compliance`), the page (`/permissions/compliance`) and
`manage.py compliance_report`, so the three always agree. A period is [start, end).
A handful of aggregate queries whatever the number of checks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils.dateparse import parse_date, parse_datetime

from audit.models import PermissionEvent
from missioncontrol.spreadsheet import cell

DEFAULT_DAYS = 7
CSV_COLUMNS = (
    "section",
    "subject",
    "resource",
    "day",
    "checks",
    "grants",
    "denials",
    "escalations",
    "detail",
)

_COUNTS = {
    "checks": Count("id"),
    "grants": Count("id", filter=Q(granted=True)),
    "denials": Count("id", filter=Q(granted=False)),
    "escalations": Count("id", filter=Q(escalation_detected=True)),
}


def parse_bound(value: str) -> datetime:
    """An ISO 8601 datetime (naive is UTC) or a date (its midnight, UTC); ValueError otherwise."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(f"expected an ISO 8601 date or datetime, got {value!r}")
        parsed = datetime.combine(day, time.min)
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"outside the years 1 to 9999 in UTC: {value!r}") from None
    return parsed


class BadPeriod(ValueError):
    """`from` or `to` is unusable; `field` names which."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def period(start: str | None, end: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) from optional strings: by default the last seven days up to now.

    BadPeriod naming `from` or `to` when one is unusable or the period is empty.
    """
    try:
        stop = parse_bound(end) if end else (now or datetime.now(UTC))
    except ValueError as exc:
        raise BadPeriod("to", str(exc)) from None
    try:
        begin = parse_bound(start) if start else stop - timedelta(days=DEFAULT_DAYS)
    except ValueError as exc:
        raise BadPeriod("from", str(exc)) from None
    except OverflowError:
        raise BadPeriod("to", "too early: the period before it starts before the year 1") from None
    if begin >= stop:
        raise BadPeriod("from", "must be before to")
    return begin, stop


@dataclass
class ComplianceReport:
    start: datetime
    end: datetime
    totals: dict[str, int]
    by_subject: list[dict[str, Any]]
    by_resource: list[dict[str, Any]]
    top_denials: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    per_day: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "totals": self.totals,
            "by_subject": self.by_subject,
            "by_resource": self.by_resource,
            "top_denials": [{**d, "last_at": d["last_at"].isoformat()} for d in self.top_denials],
            "escalations": [{**e, "timestamp": e["timestamp"].isoformat()} for e in self.escalations],
            "per_day": [{**d, "day": d["day"].isoformat()} for d in self.per_day],
        }

    def csv_rows(self) -> Iterator[dict[str, Any]]:
        """One table: a `section` column says what each row counts."""
        yield {"section": "totals", **self.totals}
        for row in self.by_subject:
            yield {"section": "subject", **row}
        for row in self.by_resource:
            yield {"section": "resource", **row}
        for row in self.top_denials:
            yield {
                "section": "top_denial",
                "subject": row["subject"],
                "resource": row["resource"],
                "denials": row["denials"],
                "detail": f"last at {row['last_at'].isoformat()}",
            }
        for row in self.per_day:
            yield {"section": "day", **row, "day": row["day"].isoformat()}
        for row in self.escalations:
            yield {
                "section": "escalation",
                "subject": row["subject"],
                "resource": row["resource"],
                "day": row["timestamp"].isoformat(),
                "escalations": 1,
                "detail": "; ".join(f"{r.get('rule')}: {r.get('detail')}" for r in row["rules"]),
            }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: cell(v) for k, v in row.items()} for row in self.csv_rows())
        return out.getvalue()

    def as_text(self) -> str:
        t = self.totals
        lines = [
            f"Compliance report {self.start.isoformat()} to {self.end.isoformat()}",
            f"checks {t['checks']}, grants {t['grants']}, denials {t['denials']}, "
            f"escalations {t['escalations']}",
            "",
            "By subject:",
            *(_counts_line(r["subject"], r) for r in self.by_subject),
            "",
            "By resource:",
            *(_counts_line(r["resource"], r) for r in self.by_resource),
            "",
            "Top denials:",
            *(f"  {r['denials']:>6}  {r['subject']} -> {r['resource']}" for r in self.top_denials),
            "",
            "Escalations:",
            *(
                f"  {e['timestamp'].isoformat()}  {e['subject']} {e['resource']} (thread {e['thread_id']}): "
                + ", ".join(str(r.get("rule")) for r in e["rules"])
                for e in self.escalations
            ),
        ]
        return "\n".join(lines) + "\n"


def _counts_line(name: str, row: dict[str, Any]) -> str:
    return (
        f"  {name:<40} checks {row['checks']:>6}  grants {row['grants']:>6}  "
        f"denials {row['denials']:>6}  escalations {row['escalations']:>4}"
    )


def _grouped(checks: QuerySet[PermissionEvent], field: str, name: str) -> list[dict[str, Any]]:
    rows = checks.values(field).annotate(**_COUNTS).order_by("-checks", field)
    return [{name: r[field], **{k: r[k] for k in _COUNTS}} for r in rows]


def compliance_report(
    start: datetime, end: datetime, top: int = 10, max_escalations: int = 100, *, user: Any = None
) -> ComplianceReport:
    """Totals, by subject and resource, top denials, escalations and checks per day in [start, end).

    Of the checks `user` may see (PermissionEvent.objects.visible_to) when one is given,
    as on every other surface; of every check for the command (`user` None)."""
    checks = PermissionEvent.objects.all() if user is None else PermissionEvent.objects.visible_to(user)
    checks = checks.filter(timestamp__gte=start, timestamp__lt=end).order_by()
    totals = checks.aggregate(**_COUNTS)
    denials = (
        checks.filter(granted=False)
        .values("user_id", "resource")
        .annotate(denials=Count("id"), last_at=Max("timestamp"))
        .order_by("-denials", "user_id", "resource")[:top]
    )
    escalations = checks.filter(escalation_detected=True).order_by("-timestamp")[:max_escalations]
    days = (
        checks.annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("day")
        .annotate(**_COUNTS)
        .order_by("day")
    )
    return ComplianceReport(
        start=start,
        end=end,
        totals={k: totals[k] or 0 for k in _COUNTS},
        by_subject=_grouped(checks, "user_id", "subject"),
        by_resource=_grouped(checks, "resource", "resource"),
        top_denials=[
            {
                "subject": d["user_id"],
                "resource": d["resource"],
                "denials": d["denials"],
                "last_at": d["last_at"],
            }
            for d in denials
        ],
        escalations=[
            {
                "id": e.id,
                "timestamp": e.timestamp,
                "thread_id": e.thread_id,
                "subject": e.user_id,
                "resource": e.resource,
                "action": e.action,
                "granted": e.granted,
                "rules": e.escalations
                or [{"rule": "reported", "detail": "escalation_detected set by the reporter"}],
            }
            for e in escalations
        ],
        per_day=[{"day": _as_date(d["day"]), **{k: d[k] for k in _COUNTS}} for d in days],
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))

"""Usage over a window: totals, the sums of one grouping, and a time series, with costs.

The one reading of LLMUsage rows that the page, REST and GraphQL share. Sums and costs
are computed by the database (one grouped query each); only the top groups come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict, get_args

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from threads.models import Thread
from usage.models import LLMUsage
from usage.pricing import PER, PriceTable

GroupBy = Literal["model", "server", "user", "thread"]
GROUPS: tuple[str, ...] = get_args(GroupBy)
_KEYS = {"model": "model", "server": "thread__mcp_id", "user": "user", "thread": "thread_id"}


@dataclass(frozen=True)
class Window:
    """A reporting window: how far back, and the width of its chart's buckets."""

    key: str
    label: str
    seconds: int
    bucket: Literal["minute", "hour", "day"]

    @property
    def bucket_seconds(self) -> int:
        return {"minute": 60, "hour": 3600, "day": 86400}[self.bucket]

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """[since, until): whole buckets, the last one holding `now`."""
        step = self.bucket_seconds
        epoch = int(now.timestamp())
        until = datetime.fromtimestamp(epoch - epoch % step + step, UTC)
        return until - timedelta(seconds=self.seconds), until


WINDOWS: dict[str, Window] = {
    w.key: w
    for w in (
        Window("1h", "1 hour", 3600, "minute"),
        Window("24h", "24 hours", 86400, "hour"),
        Window("7d", "7 days", 7 * 86400, "hour"),
        Window("30d", "30 days", 30 * 86400, "day"),
    )
}
DEFAULT_WINDOW = "24h"


class Sums(TypedDict):
    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float | None  # None: none of these tokens has a price
    cost_complete: bool  # False: some tokens have no price (the cost leaves them out)
    unpriced_tokens: int


class Group(Sums):
    key: str | None
    label: str
    thread_id: str | None
    mcp_id: str | None


class Point(TypedDict):
    t: int  # unix seconds of the bucket's start
    input_tokens: int
    output_tokens: int
    cost: float | None


class Report(TypedDict):
    window: str
    since: str
    until: str
    bucket_seconds: int
    currency: str
    group_by: str
    totals: Sums
    unpriced_models: list[str]
    groups: list[Group]
    series: list[Point]


def _aggregates(prices: PriceTable) -> dict[str, Any]:
    return {
        "calls": Count("pk"),
        "tokens_in": Sum("input_tokens"),
        "tokens_out": Sum("output_tokens"),
        "cost_sum": Sum(prices.cost_expression()),
        "unpriced": Sum(prices.unpriced_expression()),
    }


def _sums(row: dict[str, Any]) -> Sums:
    tokens_in, tokens_out = row["tokens_in"] or 0, row["tokens_out"] or 0
    unpriced = row["unpriced"] or 0
    # No priced row: the cost is unknown if any token went unpriced, else there was nothing to pay.
    cost = row["cost_sum"] if row["cost_sum"] is not None else (None if unpriced else 0.0)
    return {
        "calls": row["calls"],
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        "cost": None if cost is None else round(cost / PER, 9),
        "cost_complete": unpriced == 0,
        "unpriced_tokens": unpriced,
    }


def _label(group_by: str, key: str | None) -> str:
    if key:
        return key
    return {"model": "(model not reported)", "server": "(no server)", "user": "(user not reported)"}.get(
        group_by, "(none)"
    )


def _total(parts: list[Group]) -> Sums:
    """The sums of groups that together hold every row (a report's models)."""
    costs = [g["cost"] for g in parts if g["cost"] is not None]
    unpriced = sum(g["unpriced_tokens"] for g in parts)
    tokens_in, tokens_out = sum(g["input_tokens"] for g in parts), sum(g["output_tokens"] for g in parts)
    return {
        "calls": sum(g["calls"] for g in parts),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        "cost": round(sum(costs), 9) if costs or not unpriced else None,
        "cost_complete": unpriced == 0,
        "unpriced_tokens": unpriced,
    }


def groups(rows: QuerySet[LLMUsage], group_by: str, prices: PriceTable, limit: int | None) -> list[Group]:
    """The `limit` groups costing most (those of unknown cost last, then by tokens); all of
    them if `limit` is None."""
    key = _KEYS[group_by]
    found = (
        rows.order_by()
        .values(group=F(key))
        .annotate(**_aggregates(prices))
        .annotate(tokens=F("tokens_in") + F("tokens_out"))
        .order_by(F("cost_sum").desc(nulls_last=True), F("tokens").desc(), "group")[:limit]
    )
    out: list[Group] = []
    for row in found:
        out.append(
            {
                "key": row["group"],
                "label": _label(group_by, row["group"]),
                "thread_id": None,
                "mcp_id": None,
                **_sums(row),
            }
        )
    if group_by == "thread":
        threads = Thread.objects.filter(id__in=[g["key"] for g in out]).values_list(
            "id", "user_input", "mcp_id"
        )
        known = {tid: (text, mcp) for tid, text, mcp in threads}
        for group in out:
            text, mcp = known.get(group["key"] or "", ("", None))
            group["thread_id"], group["mcp_id"] = group["key"], mcp
            group["label"] = " ".join(text.split())[:120] or group["label"]
    return out


def series(
    rows: QuerySet[LLMUsage], window: Window, since: datetime, until: datetime, prices: PriceTable
) -> list[Point]:
    """Tokens and cost per bucket, every bucket of the window present (empty ones at 0)."""
    found = (
        rows.order_by()
        .annotate(bucket=Trunc("timestamp", window.bucket, tzinfo=UTC))
        .values("bucket")
        .annotate(**_aggregates(prices))
    )
    by_start = {int(row["bucket"].timestamp()): _sums(row) for row in found}
    points: list[Point] = []
    for start in range(int(since.timestamp()), int(until.timestamp()), window.bucket_seconds):
        sums = by_start.get(start)
        if sums is None:
            points.append({"t": start, "input_tokens": 0, "output_tokens": 0, "cost": 0.0})
        else:
            points.append(
                {
                    "t": start,
                    "input_tokens": sums["input_tokens"],
                    "output_tokens": sums["output_tokens"],
                    "cost": sums["cost"],
                }
            )
    return points


def report(
    rows: QuerySet[LLMUsage],
    window: Window,
    group_by: str = "model",
    *,
    prices: PriceTable | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> Report:
    """The usage of `rows` (those the reader may see) over `window`, grouped by `group_by`."""
    prices = prices or PriceTable.configured()
    since, until = window.bounds(now or timezone.now())
    rows = rows.between(since, until)  # type: ignore[attr-defined]
    # Every model's sums (a short list) give the totals and the models with no price too:
    # three passes over the window's rows at most (models, the grouping, the series).
    models = groups(rows, "model", prices, None)
    unpriced = sorted(g["label"] for g in models if prices.price_of(g["key"] or "") is None)
    return {
        "window": window.key,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucket_seconds": window.bucket_seconds,
        "currency": prices.currency,
        "group_by": group_by,
        "totals": _total(models),
        "unpriced_models": unpriced[:50],
        "groups": models[:limit] if group_by == "model" else groups(rows, group_by, prices, limit),
        "series": series(rows, window, since, until, prices),
    }

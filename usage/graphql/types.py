"""The usage report's GraphQL types: the same figures as GET /api/usage."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry


@strawberry.enum(description="What a usage report's groups sum by.")
class UsageGroupBy(Enum):
    MODEL = "model"
    SERVER = "server"
    USER = "user"
    THREAD = "thread"


@strawberry.type(description="Sums of LLM calls: tokens and their cost.")
class UsageSums:
    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float | None = strawberry.field(
        description="In the report's currency; null when none of these tokens' models has a price."
    )
    cost_complete: bool = strawberry.field(
        description="False when some tokens' models have no price: `cost` leaves them out."
    )
    unpriced_tokens: int


@strawberry.type(description="The sums of one model, server, user or thread.")
class UsageGroup(UsageSums):
    key: str | None
    label: str
    thread_id: str | None
    mcp_id: str | None


@strawberry.type(description="Tokens and cost of one bucket of time.")
class UsagePoint:
    t: int = strawberry.field(description="Unix seconds of the bucket's start.")
    input_tokens: int
    output_tokens: int
    cost: float | None


@strawberry.type(description="LLM usage over a window, as GET /api/usage answers it.")
class UsageReport:
    window: str
    since: str
    until: str
    bucket_seconds: int
    currency: str
    group_by: UsageGroupBy
    totals: UsageSums
    unpriced_models: list[str]
    groups: list[UsageGroup]
    series: list[UsagePoint]

    @classmethod
    def of(cls, report: dict[str, Any]) -> UsageReport:
        return cls(
            window=report["window"],
            since=report["since"],
            until=report["until"],
            bucket_seconds=report["bucket_seconds"],
            currency=report["currency"],
            group_by=UsageGroupBy(report["group_by"]),
            totals=UsageSums(**report["totals"]),
            unpriced_models=report["unpriced_models"],
            groups=[UsageGroup(**g) for g in report["groups"]],
            series=[UsagePoint(**p) for p in report["series"]],
        )

"""The usage query of the root schema."""

from __future__ import annotations

import strawberry
import strawberry_django
from strawberry.types import Info

from usage.graphql.types import UsageGroupBy, UsageReport
from usage.models import LLMUsage
from usage.report import DEFAULT_WINDOW, WINDOWS, report

MAX_LIMIT = 500


@strawberry.type
class UsageQuery:
    @strawberry_django.field(
        description="Tokens and cost of the LLM calls of the threads you may see, over `window` "
        "(1h, 24h, 7d or 30d): totals, the costliest groups, and a series over time."
    )
    def usage(
        self,
        info: Info,
        window: str = DEFAULT_WINDOW,
        group_by: UsageGroupBy = UsageGroupBy.MODEL,
        limit: int = 20,
    ) -> UsageReport:
        if window not in WINDOWS:
            raise ValueError(f"window: expected one of {', '.join(WINDOWS)}, got {window!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit: expected 1 to {MAX_LIMIT}, got {limit}")
        rows = LLMUsage.objects.visible_to(info.context.request.user)
        return UsageReport.of(dict(report(rows, WINDOWS[window], group_by.value, limit=limit)))

"""GraphQL filters of logs: the fields of the REST log filter, as typed arguments."""

from __future__ import annotations

from datetime import datetime

import strawberry_django
from django.db.models import Q

from logs.models import LogEntry, LogEntryQuerySet


@strawberry_django.filter_type(LogEntry)
class LogEntryFilter:
    """Logs matching every given filter; a list matches any of its values."""

    @strawberry_django.filter_field(description="Logs of any of these threads.")
    def threads(self, value: list[str], prefix: str) -> Q:
        return Q(**{f"{prefix}thread_id__in": value})

    @strawberry_django.filter_field(description="Logs of any of these MCP servers.")
    def mcps(self, value: list[str], prefix: str) -> Q:
        return Q(**{f"{prefix}mcp_id__in": value})

    @strawberry_django.filter_field(description="Any of these levels: DEBUG, INFO, WARN, ERROR.")
    def levels(self, value: list[str], prefix: str) -> Q:
        return Q(**{f"{prefix}level__in": [level.upper() for level in value]})

    @strawberry_django.filter_field(description="Logs of any of these services.")
    def services(self, value: list[str], prefix: str) -> Q:
        return Q(**{f"{prefix}service__in": value})

    @strawberry_django.filter_field(
        description='Messages matching this web-search query ("disk full" -warning); full-text on PostgreSQL.'
    )
    def search(self, queryset: LogEntryQuerySet, value: str, prefix: str) -> tuple[LogEntryQuerySet, Q]:
        return queryset.search(value), Q()

    @strawberry_django.filter_field(name="from", description="At or after this time.")
    def from_(self, value: datetime, prefix: str) -> Q:
        return Q(**{f"{prefix}timestamp__gte": value})

    @strawberry_django.filter_field(description="At or before this time.")
    def to(self, value: datetime, prefix: str) -> Q:
        return Q(**{f"{prefix}timestamp__lte": value})

"""GraphQL filters of threads: the fields of the REST thread filter, as typed arguments."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from django.db.models import Q

from threads.models import Thread, ThreadQuerySet


@strawberry_django.filter_type(Thread)
class ThreadFilter:
    """Threads matching every given filter; a list matches any of its values."""

    @strawberry_django.filter_field(description="Any of these statuses.")
    def statuses(self, value: list[str], prefix: str) -> Q:
        return Q(**{f"{prefix}status__in": value})

    @strawberry_django.filter_field(description="Threads on any of these MCP servers.")
    def mcps(self, value: list[strawberry.ID], prefix: str) -> Q:
        return Q(**{f"{prefix}mcp_id__in": value})

    @strawberry_django.filter_field(description="Children of this thread.")
    def parent(self, value: strawberry.ID, prefix: str) -> Q:
        return Q(**{f"{prefix}parent_id": value})

    @strawberry_django.filter_field(description="True: only threads without a parent; false: only children.")
    def root(self, value: bool, prefix: str) -> Q:
        return Q(**{f"{prefix}parent__isnull": value})

    @strawberry_django.filter_field(description="Threads of this client session.")
    def session(self, value: strawberry.ID, prefix: str) -> Q:
        return Q(**{f"{prefix}session_id": value})

    @strawberry_django.filter_field(
        description="True: only threads with at least one failed step; false: only those with none."
    )
    def with_failures(self, value: bool, prefix: str) -> Q:
        return Q(**{f"{prefix}error_count__gt": 0}) if value else Q(**{f"{prefix}error_count": 0})

    @strawberry_django.filter_field(
        description="User input matching this web-search query, or this thread id."
    )
    def search(self, queryset: ThreadQuerySet, value: str, prefix: str) -> tuple[ThreadQuerySet, Q]:
        return queryset.search(value), Q()

    @strawberry_django.filter_field(name="from", description="Started at or after this time.")
    def from_(self, value: datetime, prefix: str) -> Q:
        return Q(**{f"{prefix}started_at__gte": value})

    @strawberry_django.filter_field(description="Started at or before this time.")
    def to(self, value: datetime, prefix: str) -> Q:
        return Q(**{f"{prefix}started_at__lte": value})

"""GraphQL type of a structured log line."""

from __future__ import annotations

from typing import Any

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry import auto
from strawberry.types import Info

from logs.models import LogEntry
from missioncontrol.graphql.pagination import visible


@strawberry_django.type(LogEntry)
class LogEntryType:
    id: strawberry.ID
    timestamp: auto
    level: auto
    service: auto
    thread_id: auto
    mcp_id: auto
    message: auto
    context: auto
    exception: auto
    received_at: auto

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Any], info: Info, **kwargs: Any) -> QuerySet[Any]:
        """Wherever it is reached (root, relation), only what the user may see."""
        return visible(queryset, info)

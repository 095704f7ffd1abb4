"""The log queries of the root schema."""

from __future__ import annotations

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry.types import Info
from strawberry_django.pagination import OffsetPaginated

from logs.graphql.filters import LogEntryFilter
from logs.graphql.types import LogEntryType
from logs.models import LogEntry


@strawberry.type
class LogsQuery:
    @strawberry_django.field(description="The log line with this id, or null.")
    def log(self, info: Info, id: strawberry.ID) -> LogEntryType | None:
        return LogEntry.objects.visible_to(info.context.request.user).filter(id=id)  # type: ignore[return-value]

    @strawberry_django.offset_paginated(
        OffsetPaginated[LogEntryType], filters=LogEntryFilter, description="Logs, newest first."
    )
    def logs(self, info: Info) -> QuerySet[LogEntry]:
        return LogEntry.objects.visible_to(info.context.request.user).order_by("-timestamp", "-id")

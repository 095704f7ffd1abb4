"""The thread queries of the root schema."""

from __future__ import annotations

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry.types import Info
from strawberry_django.pagination import OffsetPaginated

from threads.graphql.filters import ThreadFilter
from threads.graphql.types import ThreadType
from threads.models import Thread


@strawberry.type
class ThreadsQuery:
    @strawberry_django.field(description="The thread with this id, or null.")
    def thread(self, info: Info, id: strawberry.ID) -> ThreadType | None:
        return Thread.objects.visible_to(info.context.request.user).filter(id=id)  # type: ignore[return-value]

    @strawberry_django.offset_paginated(
        OffsetPaginated[ThreadType], filters=ThreadFilter, description="Threads, latest started first."
    )
    def threads(self, info: Info) -> QuerySet[Thread]:
        return Thread.objects.visible_to(info.context.request.user).order_by("-started_at", "-id")

"""The permission-check queries of the root schema."""

from __future__ import annotations

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry.types import Info
from strawberry_django.pagination import OffsetPaginated

from audit.graphql.filters import PermissionEventFilter
from audit.graphql.types import PermissionEventType
from audit.models import PermissionEvent


@strawberry.type
class AuditQuery:
    @strawberry_django.field(description="The permission check with this id, or null.")
    def permission_event(self, info: Info, id: strawberry.ID) -> PermissionEventType | None:
        return PermissionEvent.objects.visible_to(info.context.request.user).filter(id=id)  # type: ignore[return-value]

    @strawberry_django.offset_paginated(
        OffsetPaginated[PermissionEventType],
        filters=PermissionEventFilter,
        description="Permission checks, latest first.",
    )
    def permission_events(self, info: Info) -> QuerySet[PermissionEvent]:
        return PermissionEvent.objects.visible_to(info.context.request.user).order_by("-timestamp", "-id")

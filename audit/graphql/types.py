"""GraphQL type of a permission check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry import auto
from strawberry.types import Info

from audit.models import PermissionEvent
from missioncontrol.graphql.pagination import visible

if TYPE_CHECKING:
    from threads.graphql.types import ThreadType


@strawberry_django.type(PermissionEvent)
class PermissionEventType:
    id: strawberry.ID
    timestamp: auto
    thread: Annotated[ThreadType, strawberry.lazy("threads.graphql.types")]
    user_id: auto
    resource: auto
    action: auto
    granted: auto
    reason: auto
    rules_checked: auto
    inheritance_chain: auto
    escalation_detected: auto
    escalations: auto
    severity: auto
    received_at: auto

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Any], info: Info, **kwargs: Any) -> QuerySet[Any]:
        """Wherever it is reached (root, relation), only what the user may see."""
        return visible(queryset, info)

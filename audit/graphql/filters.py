"""GraphQL filters of permission checks ("denials in the last 24 h": granted false, from a day ago)."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from django.db.models import Q
from strawberry import auto

from audit.models import PermissionEvent


@strawberry_django.filter_type(PermissionEvent)
class PermissionEventFilter:
    """Permission checks matching every given filter."""

    user_id: auto
    granted: auto
    resource: auto
    action: auto
    severity: auto
    escalation_detected: auto

    @strawberry_django.filter_field(description="Checks made in this thread.")
    def thread(self, value: strawberry.ID, prefix: str) -> Q:
        return Q(**{f"{prefix}thread_id": value})

    @strawberry_django.filter_field(name="from", description="At or after this time.")
    def from_(self, value: datetime, prefix: str) -> Q:
        return Q(**{f"{prefix}timestamp__gte": value})

    @strawberry_django.filter_field(description="At or before this time.")
    def to(self, value: datetime, prefix: str) -> Q:
        return Q(**{f"{prefix}timestamp__lte": value})

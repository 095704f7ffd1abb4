"""The one FilterSet of permission checks: "all denials in the last 24 h" is
`?granted=false&since=24h`."""

from __future__ import annotations

import django_filters

from audit.models import AccessEvent, PermissionEvent
from missioncontrol.filters import (
    CharInFilter,
    ChoiceInFilter,
    StrictBooleanFilter,
    StrictFilterSet,
    time_range,
)


class PermissionEventFilterSet(StrictFilterSet):
    user = CharInFilter(field_name="user_id")
    granted = StrictBooleanFilter()
    resource = django_filters.CharFilter()
    resource_prefix = django_filters.CharFilter(field_name="resource", lookup_expr="startswith")
    action = ChoiceInFilter(choices=PermissionEvent.Action.choices)
    severity = ChoiceInFilter(choices=PermissionEvent.Severity.choices)
    escalation = StrictBooleanFilter(field_name="escalation_detected")
    thread = CharInFilter(field_name="thread_id")
    locals().update(time_range("timestamp"))

    class Meta:
        model = PermissionEvent
        fields: list[str] = []


class AccessEventFilterSet(StrictFilterSet):
    """The access audit: `?actor=alice&action=tool.call,server.reconnect&since=24h`."""

    actor = CharInFilter(field_name="actor_name")
    action = CharInFilter()
    outcome = ChoiceInFilter(choices=AccessEvent.Outcome.choices)
    target = django_filters.CharFilter()
    locals().update(time_range("timestamp"))

    class Meta:
        model = AccessEvent
        fields: list[str] = []

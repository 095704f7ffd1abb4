"""The shape of the permission audit's rows, for the OpenAPI schema.

The view answers with `PermissionEvent.as_event()`, the dict the WebSocket sends too;
this serializer only describes it. Nothing is serialized through it.
"""

from __future__ import annotations

from rest_framework import serializers

from audit.models import PermissionEvent
from missioncontrol.openapi import ConstantField


class PermissionCheckSerializer(serializers.Serializer[PermissionEvent]):
    """One permission check and its verdict (`PermissionEvent.as_event()`)."""

    type = ConstantField("permission.check")
    id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    thread_id = serializers.CharField()
    user_id = serializers.CharField(allow_blank=True)
    resource = serializers.CharField()
    action = serializers.ChoiceField(choices=PermissionEvent.Action.choices)
    granted = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    rules_checked = serializers.ListField(child=serializers.JSONField())
    inheritance_chain = serializers.ListField(
        child=serializers.JSONField(),
        help_text="Thread ids root first, or {thread_id, subject, granted, rule} as the gateway records.",
    )
    escalation_detected = serializers.BooleanField()
    escalations = serializers.ListField(
        child=serializers.JSONField(), help_text='The escalation rules that fired: [{"rule", "detail"}].'
    )
    severity = serializers.ChoiceField(choices=PermissionEvent.Severity.choices)

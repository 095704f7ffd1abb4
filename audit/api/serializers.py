"""The shape of the permission audit's rows, for the OpenAPI schema.

The view answers with `PermissionEvent.as_event()`, the dict the WebSocket sends too;
this serializer only describes it. Nothing is serialized through it.
"""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AccessEvent, PermissionEvent
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


class AccessEventSerializer(serializers.Serializer[AccessEvent]):
    """One access to Mission Control itself (`AccessEvent.as_event()`)."""

    id = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    actor = serializers.CharField(
        allow_blank=True, help_text="The user's name (or the name a failed login gave)."
    )
    actor_id = serializers.IntegerField(allow_null=True)
    action = serializers.CharField(help_text="login, login.failed, token.issued, token.used, tool.call, ...")
    target = serializers.CharField(allow_blank=True)
    outcome = serializers.ChoiceField(choices=AccessEvent.Outcome.choices)
    details = serializers.DictField()
    ip = serializers.IPAddressField(allow_null=True)

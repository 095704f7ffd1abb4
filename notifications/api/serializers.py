from __future__ import annotations

from typing import Any

from rest_framework import serializers

from missioncontrol.models import Team
from notifications.kinds import KINDS
from notifications.models import CHANNEL_SETTINGS, Alert, Channel, Delivery, DeliveryAttempt


class ChannelSerializer(serializers.ModelSerializer[Channel]):
    team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        allow_null=True,
        required=False,
        help_text="The team's slug; null: a global channel, which gets every alert.",
    )
    targets = serializers.ListField(
        child=serializers.CharField(trim_whitespace=True),
        required=False,
        help_text="Apprise URLs (json://, mailto://, slack://, ntfy://...). Admins read them "
        "whole; everyone else masked to their scheme (json://***).",
    )
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=KINDS), required=False, help_text="Empty: every kind."
    )
    quiet_start = serializers.TimeField(
        allow_null=True, required=False, format="%H:%M", help_text="HH:MM in time_zone."
    )
    quiet_end = serializers.TimeField(allow_null=True, required=False, format="%H:%M", help_text="HH:MM.")

    class Meta:
        model = Channel
        fields = ["id", *CHANNEL_SETTINGS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_representation(self, instance: Channel) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        data["targets"] = instance.targets_for(request.user if request is not None else None)
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = {f: getattr(self.instance, f) for f in self.Meta.fields if self.instance is not None}
        merged = {k: v for k, v in {**current, **attrs}.items() if k not in self.Meta.read_only_fields}
        problems = Channel(**merged).problems()
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class AlertSerializer(serializers.ModelSerializer[Alert]):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "key",
            "kind",
            "subject",
            "team",
            "severity",
            "title",
            "message",
            "opened_at",
            "last_seen_at",
            "repeats",
            "resolved_at",
            "resolution",
        ]


class AttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "at", "ok", "sent_to", "error", "duration_ms"]


class DeliverySerializer(serializers.ModelSerializer[Delivery]):
    alert = AlertSerializer(allow_null=True)
    attempts = AttemptSerializer(many=True)
    outcome = serializers.CharField(source="outcome_text", help_text="How it went, in words.")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "channel",
            "purpose",
            "status",
            "outcome",
            "title",
            "alert",
            "tries",
            "error",
            "created_at",
            "next_attempt_at",
            "finished_at",
            "attempts",
        ]


class TestResultSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField(help_text="Every target took the test message.")
    outcome = serializers.CharField(help_text="What happened, in words.")
    delivery = DeliverySerializer()

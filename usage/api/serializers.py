"""The usage report's shape, for the OpenAPI schema (the view answers usage.report.Report)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from usage.report import DEFAULT_WINDOW, GROUPS, WINDOWS

MAX_LIMIT = 500


class UsageParams(serializers.Serializer[Any]):
    window = serializers.ChoiceField(
        choices=list(WINDOWS), default=DEFAULT_WINDOW, help_text="How far back: 1h, 24h, 7d or 30d."
    )
    group_by = serializers.ChoiceField(
        choices=list(GROUPS),
        default="model",
        help_text="What `groups` sums by: model, server, user or thread.",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=20, help_text="Most groups answered, costliest first."
    )


class UsageSumsSerializer(serializers.Serializer[Any]):
    calls = serializers.IntegerField(help_text="LLM calls reported.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.FloatField(
        allow_null=True,
        help_text="In `currency`, from usage.prices; null when none of these tokens' models has a price.",
    )
    cost_complete = serializers.BooleanField(
        help_text="False when some tokens' models have no price: `cost` leaves them out."
    )
    unpriced_tokens = serializers.IntegerField(help_text="Tokens of models with no price.")


class UsageGroupSerializer(UsageSumsSerializer):
    key = serializers.CharField(
        allow_null=True, help_text="The model, server id, user or thread id; null: none."
    )
    label = serializers.CharField(help_text="What to show: the key, or a thread's user input.")
    thread_id = serializers.CharField(allow_null=True, help_text="Grouped by thread: the thread.")
    mcp_id = serializers.CharField(allow_null=True, help_text="Grouped by thread: its server.")


class UsagePointSerializer(serializers.Serializer[Any]):
    t = serializers.IntegerField(help_text="Unix seconds of the bucket's start.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = serializers.FloatField(allow_null=True, help_text="Null: the bucket's tokens have no price.")


class UsageReportSerializer(serializers.Serializer[Any]):
    window = serializers.ChoiceField(choices=list(WINDOWS))
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    bucket_seconds = serializers.IntegerField(help_text="Width of each `series` bucket.")
    currency = serializers.CharField(help_text="The unit of every cost (usage.currency).")
    group_by = serializers.ChoiceField(choices=list(GROUPS))
    totals = UsageSumsSerializer()
    unpriced_models = serializers.ListField(
        child=serializers.CharField(), help_text="Models used in the window that have no price."
    )
    groups = UsageGroupSerializer(many=True)
    series = UsagePointSerializer(many=True)

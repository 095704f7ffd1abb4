"""The shapes of the thread API's rows, for the OpenAPI schema.

The views answer with dicts the models build (`Thread.summary()`, `ExecutionStep.as_event()`,
`LLMMessage.as_event()`), the same ones the WebSocket sends; these serializers only
describe them. Nothing is serialized through them.
"""

from __future__ import annotations

from rest_framework import serializers

from missioncontrol.openapi import ConstantField
from threads.models import ExecutionStep, LLMMessage, Thread


class ThreadSummarySerializer(serializers.Serializer[Thread]):
    """A thread's own fields (`Thread.summary()`)."""

    id = serializers.CharField()
    parent_id = serializers.CharField(allow_null=True)
    mcp_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Thread.Status.choices)
    user_input = serializers.CharField(allow_blank=True)
    execution_context = serializers.DictField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)
    stalled_at = serializers.DateTimeField(
        allow_null=True, help_text="Set by the health monitor while it runs with no new step."
    )
    memory_usage = serializers.IntegerField(allow_null=True, help_text="bytes")
    cpu_usage = serializers.FloatField(allow_null=True, help_text="percent")


class ThreadStepSerializer(serializers.Serializer[ExecutionStep]):
    """One step of a thread's timeline (`ExecutionStep.as_event()`)."""

    type = ConstantField("thread.step")
    thread_id = serializers.CharField()
    sequence = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    step_type = serializers.ChoiceField(choices=ExecutionStep.StepType.choices)
    description = serializers.CharField(allow_blank=True)
    details = serializers.DictField()
    status = serializers.ChoiceField(choices=ExecutionStep.Status.choices)
    duration_ms = serializers.FloatField(allow_null=True)


class ThreadMessageSerializer(serializers.Serializer[LLMMessage]):
    """One message of a thread's LLM transcript (`LLMMessage.as_event()`)."""

    type = ConstantField("thread.message")
    id = serializers.CharField()
    thread_id = serializers.CharField()
    role = serializers.ChoiceField(choices=LLMMessage.Role.choices)
    content = serializers.CharField(allow_blank=True)
    timestamp = serializers.DateTimeField()
    metadata = serializers.DictField()


class ThreadStateSerializer(serializers.Serializer[Thread]):
    """Everything an inspector needs first (`Thread.state()`)."""

    thread = ThreadSummarySerializer()
    children = serializers.ListField(child=serializers.CharField(), help_text="The children's ids.")
    timeline = ThreadStepSerializer(many=True)
    transcript = ThreadMessageSerializer(many=True)

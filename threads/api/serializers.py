"""The shapes of the thread API's rows, for the OpenAPI schema.

The views answer with dicts the models build (`Thread.summary()`, `ExecutionStep.as_event()`,
`LLMMessage.as_event()`), the same ones the WebSocket sends; these serializers only
describe them. Nothing is serialized through them.
"""

from __future__ import annotations

from rest_framework import serializers

from missioncontrol.openapi import ConstantField
from threads.models import ExecutionStep, LLMMessage, Session, Thread


class CurrentStepSerializer(serializers.Serializer[ExecutionStep]):
    """The step a thread is in now (its latest that is not pending)."""

    sequence = serializers.IntegerField()
    step_type = serializers.ChoiceField(choices=ExecutionStep.StepType.choices)
    description = serializers.CharField(allow_blank=True, help_text="Its first 200 characters.")
    status = serializers.ChoiceField(choices=ExecutionStep.Status.choices)
    timestamp = serializers.DateTimeField()


class ThreadSummarySerializer(serializers.Serializer[Thread]):
    """A thread's own fields (`Thread.summary()`)."""

    id = serializers.CharField()
    parent_id = serializers.CharField(allow_null=True)
    mcp_id = serializers.CharField(
        allow_null=True, help_text="The server it ran on (that answered its calls)."
    )
    session_id = serializers.CharField(allow_null=True, help_text="The client session it ran in, if any.")
    status = serializers.ChoiceField(
        choices=Thread.Status.choices, help_text="Its own final status, as its agent reported it."
    )
    error_count = serializers.IntegerField(help_text="How many of its steps failed.")
    current_step = CurrentStepSerializer(
        allow_null=True, help_text="The step it is in now, while it runs or pauses; null once it ended."
    )
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
    timeline = ThreadStepSerializer(many=True, help_text="Its first steps (a page of the timeline).")
    timeline_next = serializers.CharField(
        allow_null=True, help_text="The cursor of the rest: GET .../timeline?cursor=<it>; null: no more."
    )
    step_count = serializers.IntegerField(help_text="How many steps it has in all.")
    transcript = ThreadMessageSerializer(many=True)


class SessionSerializer(serializers.Serializer[Session]):
    """A client session (`Session.summary()`)."""

    id = serializers.CharField()
    via = serializers.CharField(allow_blank=True, help_text="/mcp, mcp_proxy, ...")
    principal = serializers.CharField(allow_blank=True, help_text="Who called.")
    client = serializers.DictField(help_text="The client's name and version.")
    started_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    thread_count = serializers.IntegerField(help_text="Its threads that you may see.")
    error_count = serializers.IntegerField(help_text="Failed steps over its threads.")


class SessionDetailSerializer(SessionSerializer):
    """A session with the first page of its threads (`/api/threads?session=<id>` has them all)."""

    threads = ThreadSummarySerializer(many=True, help_text="Its latest threads, newest first.")
    threads_next = serializers.CharField(allow_null=True, help_text="The list of all its threads, when more.")

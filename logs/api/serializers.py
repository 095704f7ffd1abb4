"""The shape of the log API's rows, for the OpenAPI schema.

The views answer with `LogEntry.as_event()`, the dict the WebSocket sends too; this
serializer only describes it. Nothing is serialized through it.
"""

from __future__ import annotations

from rest_framework import serializers

from logs.models import LogEntry
from missioncontrol.openapi import ConstantField


class LogEventSerializer(serializers.Serializer[LogEntry]):
    """One structured log line (`LogEntry.as_event()`)."""

    type = ConstantField("log")
    id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    level = serializers.ChoiceField(choices=LogEntry.Level.choices)
    service = serializers.CharField()
    thread_id = serializers.CharField(allow_null=True)
    mcp_id = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    context = serializers.DictField()
    exception = serializers.CharField(allow_null=True)

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mcps.models import USAGE_WINDOWS, HealthCheck, MCPServer, Tool


class MCPServerSerializer(serializers.ModelSerializer[MCPServer]):
    tools = serializers.IntegerField(source="tool_count", read_only=True)

    class Meta:
        model = MCPServer
        fields = [
            "id",
            "name",
            "transport",
            "enabled",
            "source",
            "status",
            "last_seen",
            "last_error",
            "protocol_version",
            "server_info",
            "tools",
        ]


class MCPServerDetailSerializer(MCPServerSerializer):
    connection = serializers.SerializerMethodField()

    class Meta(MCPServerSerializer.Meta):
        fields = [
            *MCPServerSerializer.Meta.fields,
            "capabilities",
            "instructions",
            "connected_at",
            "connection",
            "default_arguments",
            "log_files",
            "log_retention",
            "log_sources",
        ]

    log_sources = serializers.SerializerMethodField(help_text="How far each log file has been read.")
    log_retention = serializers.DictField(
        read_only=True,
        allow_null=True,
        help_text="Its own log retention (any of hot, warm, cold) over the config's; null: the config's.",
    )

    def get_log_sources(self, server: MCPServer) -> list[dict[str, Any]]:
        from logs.models import LogSource

        fields = (
            "path",
            "format",
            "offset",
            "entries",
            "malformed",
            "rotations",
            "last_read_at",
            "last_error",
        )
        return list(LogSource.objects.filter(mcp=server).values(*fields))

    def get_connection(self, server: MCPServer) -> dict[str, Any]:
        # Secrets masked: env and headers for everyone, url and args but for admins.
        request = self.context.get("request")
        return server.connection_for(getattr(request, "user", None))


class ToolSerializer(serializers.ModelSerializer[Tool]):
    class Meta:
        model = Tool
        fields = [
            "name",
            "title",
            "description",
            "input_schema",
            "output_schema",
            "annotations",
            "updated_at",
        ]


class HealthCheckSerializer(serializers.ModelSerializer[HealthCheck]):
    class Meta:
        model = HealthCheck
        fields = ["checked_at", "ok", "latency_ms", "error"]


class HealthReportSerializer(serializers.Serializer[MCPServer]):
    """A server's status with its latest health checks, newest first (documents ServerHealth)."""

    mcp_id = serializers.CharField()
    status = serializers.ChoiceField(choices=MCPServer.Status.choices)
    last_error = serializers.CharField(allow_blank=True)
    checks = HealthCheckSerializer(many=True, help_text="The latest 50.")


class LastErrorSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    message = serializers.CharField()
    thread_id = serializers.CharField()


class ToolStatsSerializer(serializers.Serializer[Any]):
    tool = serializers.CharField()
    calls = serializers.IntegerField()
    failures = serializers.IntegerField()
    p50_ms = serializers.FloatField(help_text="Median latency (percentile_cont), ms.")
    p95_ms = serializers.FloatField()
    last_call = serializers.DateTimeField()
    last_error = LastErrorSerializer(allow_null=True, help_text="The latest failed call in the window.")


class CallSeriesSerializer(serializers.Serializer[Any]):
    t = serializers.ListField(
        child=serializers.IntegerField(), help_text="Each bucket's start, unix seconds."
    )
    calls = serializers.ListField(child=serializers.IntegerField())
    errors = serializers.ListField(child=serializers.IntegerField())


class ServerUsageSerializer(serializers.Serializer[Any]):
    """A server's tool calls over a window, among the threads the reader may see."""

    mcp_id = serializers.CharField()
    window = serializers.ChoiceField(choices=list(USAGE_WINDOWS))
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    bucket = serializers.ChoiceField(choices=["minute", "hour"], help_text="The series' bucket.")
    tools = ToolStatsSerializer(many=True, help_text="Busiest tool first; tools never called are left out.")
    series = CallSeriesSerializer()


REGISTRATION_TRANSPORTS = ["stdio", "http", "streamable-http", "streamable_http", "sse"]


class ServerRegistrationSerializer(serializers.Serializer[MCPServer]):
    """An `mcpServers` entry, as MCP hosts write them, with the server's slug (documents POST /api/mcps).

    Give `command` (stdio) or `url` (Streamable HTTP, or legacy SSE with `"type": "sse"`).
    """

    id = serializers.CharField(help_text="The server's slug (or give `name`).")
    name = serializers.CharField(required=False)
    command = serializers.CharField(required=False)
    args = serializers.ListField(child=serializers.CharField(), required=False)
    env = serializers.DictField(child=serializers.CharField(), required=False)
    cwd = serializers.CharField(required=False)
    url = serializers.URLField(required=False)
    headers = serializers.DictField(child=serializers.CharField(), required=False)
    type = serializers.ChoiceField(choices=REGISTRATION_TRANSPORTS, required=False)
    transport = serializers.ChoiceField(choices=REGISTRATION_TRANSPORTS, required=False)
    enabled = serializers.BooleanField(required=False)
    default_arguments = serializers.DictField(
        child=serializers.DictField(),
        required=False,
        help_text='Arguments routed calls get unless they give them: per tool name, or "*" for all.',
    )
    log_files = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text='Log files tailed into logs: [{"path": ..., "format": "jsonl|text|kiwi"}].',
    )
    log_retention = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Its own log retention over the config's: any of hot, warm, cold as durations, "
        'e.g. {"hot": "3 days", "cold": "90 days"}.',
    )

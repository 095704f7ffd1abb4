from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mcps.models import HealthCheck, MCPServer, Tool


def _masked(mapping: dict[str, str]) -> dict[str, str]:
    # Env and headers often carry secrets: show which are set, never their values.
    return dict.fromkeys(mapping, "***")


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
        ]

    def get_connection(self, server: MCPServer) -> dict[str, Any]:
        spec = server.connection_spec()
        spec["env"], spec["headers"] = _masked(spec["env"]), _masked(spec["headers"])
        return spec


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

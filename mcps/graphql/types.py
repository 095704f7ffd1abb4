"""GraphQL types of MCP servers, their catalog and their health.

A server's `env` and `headers` values are never exposed, nor (but to admins) the secrets
in its `url` and `args`: see mcps/masking.py.
"""

from __future__ import annotations

import strawberry
import strawberry_django
from strawberry import auto
from strawberry.scalars import JSON

from mcps.models import HealthCheck, MCPServer, Prompt, Resource, Tool
from missioncontrol.graphql.pagination import paged_list


@strawberry_django.type(Tool)
class ToolType:
    id: auto
    server: MCPServerType
    name: auto
    title: auto
    description: auto
    input_schema: auto
    output_schema: auto
    annotations: auto
    updated_at: auto


@strawberry_django.type(Resource)
class ResourceType:
    id: auto
    name: auto
    uri: auto
    title: auto
    description: auto
    mime_type: auto
    updated_at: auto


@strawberry_django.type(Prompt)
class PromptType:
    id: auto
    name: auto
    title: auto
    description: auto
    arguments: auto
    updated_at: auto


@strawberry_django.type(HealthCheck)
class HealthCheckType:
    id: auto
    checked_at: auto
    ok: auto
    latency_ms: auto
    error: auto


@strawberry_django.type(MCPServer)
class MCPServerType:
    id: strawberry.ID
    name: auto
    status: auto
    created_at: auto
    last_seen: auto
    transport: auto
    enabled: auto
    source: auto
    protocol_version: auto
    server_info: auto
    capabilities: auto
    instructions: auto
    connected_at: auto
    last_error: auto
    managed: bool = strawberry_django.field(only=["transport"], description="The gateway connects to it.")

    @strawberry_django.field(
        only=["transport", "command", "args", "env", "cwd", "url", "headers"],
        description="How the gateway connects: env and headers masked, url and args too but for admins.",
    )
    def connection(self, info: strawberry.Info) -> JSON:
        return self.connection_for(info.context.request.user)  # type: ignore[attr-defined,no-any-return]

    tools: list[ToolType] = paged_list("name", description="Its tools, by name.")
    resources: list[ResourceType] = paged_list("name", "id", description="Its resources, by name.")
    prompts: list[PromptType] = paged_list("name", description="Its prompts, by name.")
    health_checks: list[HealthCheckType] = paged_list(
        "-checked_at", "-id", description="Its health probes, latest first."
    )

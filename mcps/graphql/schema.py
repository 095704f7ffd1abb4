"""The MCP server queries of the root schema."""

from __future__ import annotations

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry_django.pagination import OffsetPaginated

from mcps.graphql.filters import MCPServerFilter
from mcps.graphql.types import MCPServerType, ToolType
from mcps.models import MCPServer, Tool


@strawberry.type
class MCPsQuery:
    @strawberry_django.field(description="The MCP server with this id, or null.")
    def mcp_server(self, id: strawberry.ID) -> MCPServerType | None:
        return MCPServer.objects.filter(id=id)  # type: ignore[return-value]

    @strawberry_django.offset_paginated(
        OffsetPaginated[MCPServerType], filters=MCPServerFilter, description="MCP servers, by id."
    )
    def mcp_servers(self) -> QuerySet[MCPServer]:
        return MCPServer.objects.order_by("id")

    @strawberry_django.offset_paginated(
        OffsetPaginated[ToolType], description="The tools of every server, by server then name."
    )
    def tools(self) -> QuerySet[Tool]:
        return Tool.objects.order_by("server_id", "name")

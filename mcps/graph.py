"""MCP servers and their tools in the relationship graph (see missioncontrol/graph.py)."""

from __future__ import annotations

from mcps.models import MCPServer, Tool
from missioncontrol.graph import (
    Edge,
    EdgeKind,
    Entity,
    EntityKind,
    ListedProvider,
    edge,
    edges_at,
    entity,
    node_id,
    split_id,
    tool_key,
)


class MCPProvider(ListedProvider):
    """Servers, their catalog tools and tools seen in use; `provides` from server to tool."""

    entity_kinds = ("server", "tool")
    edge_kinds = ("provides",)

    def listing(self, kind: EntityKind) -> list[Entity]:
        return self._servers() if kind == "server" else self._tools()

    def _servers(self) -> list[Entity]:
        rows = MCPServer.objects.values(
            "id",
            "name",
            "server_info",
            "instructions",
            "status",
            "transport",
            "enabled",
            "source",
            "last_seen",
        )
        return [
            entity(
                "server",
                s["id"],
                s["name"],
                title=str((s["server_info"] or {}).get("title") or ""),
                description=s["instructions"],
                status=s["status"],
                transport=s["transport"],
                enabled=s["enabled"],
                source=s["source"],
                last_seen=s["last_seen"].isoformat() if s["last_seen"] else None,
            )
            for s in rows
        ]

    def _tools(self) -> list[Entity]:
        tools = [
            entity(
                "tool",
                tool_key(t["server_id"], t["name"]),
                t["name"],
                title=t["title"],
                description=t["description"],
                server_id=t["server_id"],
                in_catalog=True,
            )
            for t in Tool.objects.values("server_id", "name", "title", "description")
        ]
        known = {t["id"] for t in tools}
        for tool_id in self.graph.referenced("tool") - known:
            key = split_id(tool_id)[1]
            server_id, _, name = key.partition("/")
            tools.append(entity("tool", key, name, server_id=server_id, in_catalog=False))
        return tools

    def edges(self, kind: EdgeKind, touching: str | None) -> list[Edge]:
        servers = self.listed("server")
        provides = (
            edge("provides", server, tool["id"])
            for tool in self.listed("tool").values()
            if (server := node_id("server", tool["data"]["server_id"])) in servers
        )
        return edges_at(provides, touching)

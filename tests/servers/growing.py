"""A stdio MCP server whose tool list grows: `grow(name)` adds a tool and says the list changed.

The registries' servers never change their tools, so this one (built on the `mcp` SDK's
MCPServer) exercises the gateway's list_changed handling in both eras: a notification
on handshake-era sessions, a `subscriptions/listen` stream on 2026-07-28.
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

server = MCPServer("growing")


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Add a tool called `name`."""

    def added() -> str:
        return f"I am {name}"

    server.add_tool(added, name=name, description=f"added by grow({name!r})")
    await ctx.notify_tools_changed()  # 2026-07-28: to `subscriptions/listen` streams
    session = ctx.request_context.session
    if session.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        await session.send_tool_list_changed()  # handshake era: a notification, unasked
    return f"added {name}"


if __name__ == "__main__":
    server.run("stdio")

"""A stdio MCP server that says its secrets: `leak()` prints its API_TOKEN and its
`--token` argument to stderr and in a log notification, as a careless server would."""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("leaky")


def _secrets() -> str:
    token = sys.argv[sys.argv.index("--token") + 1] if "--token" in sys.argv else ""
    return f"{os.environ.get('API_TOKEN', '')} and {token}"


@server.tool()
async def leak(ctx: Context) -> str:
    """Say the secrets on stderr and as a log notification."""
    print(f"ERROR starting with {_secrets()}", file=sys.stderr, flush=True)
    await ctx.info(f"notified {_secrets()}")
    return "said"


if __name__ == "__main__":
    server.run("stdio")

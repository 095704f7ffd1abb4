"""A stdio MCP server that says its secrets: `leak()` prints its API_TOKEN and its
`--token` argument to stderr and in a log notification, as a careless server would;
`pause(seconds)` answers after a while, logging as it starts and ends."""

from __future__ import annotations

import asyncio
import os
import sys
import warnings

from mcp.server.mcpserver import Context, MCPServer

# The 2026-07-28 era deprecates log notifications; this server sends them on purpose.
warnings.filterwarnings("ignore")
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


@server.tool()
async def pause(seconds: float, ctx: Context) -> str:
    """Wait `seconds`, saying so in log notifications."""
    await ctx.info(f"pausing {seconds}")
    await asyncio.sleep(seconds)
    await ctx.info("paused")
    return "paused"


if __name__ == "__main__":
    server.run("stdio")

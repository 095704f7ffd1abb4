"""The floor of any gateway built on the `mcp` SDK: a bare forwarder, for bench/gateway.py.

An MCP server on the SDK's low-level `Server` that lists one upstream server's tools and
forwards each call to it through an SDK client session, and does nothing else: no
names rewritten, no policy, no recording, no authentication. It runs on the same
transports as Mission Control's endpoints, so the difference between the two is
Mission Control's own work:
- `stdio`: over stdin and stdout, with the same event-loop pipes and process tuning as
  `manage.py mcp_proxy`: `python bench/forwarder.py stdio -- COMMAND ARGS...`;
- `http`: an ASGI app for daphne, Streamable HTTP at any path, as `/mcp` is served
  (the SDK's session manager, both protocol eras): `python -m daphne bench.forwarder:app`
  with the upstream's command line in FORWARD_TO (JSON list).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcps.endpoint.stdio import loop_stdio_server  # noqa: E402  (Django-free)
from missioncontrol.runtime import tune_for_latency  # noqa: E402  (Django-free)


@asynccontextmanager
async def upstream(command: list[str]) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(stdio_client(params)) as client:
        yield client


async def forwarding_server(client: Client) -> Server[Any]:
    # Listed once: the SDK's 2026-07-28 HTTP path checks `Mcp-Param-*` headers against
    # the called tool's input schema, and lists every tool per call when not told it.
    schemas = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return await client.list_tools()

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await client.call_tool(params.name, dict(params.arguments or {}))

    return Server(
        "bare-forwarder",
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(command: list[str]) -> None:
    async with upstream(command) as client, loop_stdio_server() as (read, write):
        server = await forwarding_server(client)
        await server.run(read, write, server.create_initialization_options())


class App:
    """Streamable HTTP for daphne, which sends no lifespan: started on the first request."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._manager: asyncio.Future[StreamableHTTPSessionManager] | None = None
        self._task: asyncio.Future[None] | None = None  # holds the session manager's task

    async def _run(self, ready: asyncio.Future[StreamableHTTPSessionManager]) -> None:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(upstream(self.command))
            manager = StreamableHTTPSessionManager(app=await forwarding_server(client))
            await stack.enter_async_context(manager.run())
            tune_for_latency()
            ready.set_result(manager)
            await asyncio.Event().wait()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self._manager is None:
            self._manager = asyncio.get_running_loop().create_future()
            self._task = asyncio.ensure_future(self._run(self._manager))
        manager = await self._manager
        await manager.handle_request(scope, receive, send)


app = App(json.loads(os.environ.get("FORWARD_TO", "[]")))

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "stdio" or sys.argv[2] != "--":
        sys.exit("usage: forwarder.py stdio -- COMMAND [ARGS...]")
    tune_for_latency()
    asyncio.run(serve_stdio(sys.argv[3:]))

"""bench/forwarder.py, the floor the gateway benchmark measures against, forwards for real."""

from __future__ import annotations

import sys

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.processes import ROOT

TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone=UTC"]


async def test_the_bare_forwarder_lists_and_calls_the_upstream_servers_tools() -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["bench/forwarder.py", "stdio", "--", *TIME_SERVER], cwd=str(ROOT)
    )
    async with Client(stdio_client(params)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})

    assert {"get_current_time", "convert_time"} <= tools
    assert not result.is_error
    assert '"timezone": "UTC"' in result.content[0].text

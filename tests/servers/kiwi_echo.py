"""A stdio MCP server shaped like Kiwi MCP: the tools search, load, execute, sign and help.

Kiwi is not on a package registry; this one (the `mcp` SDK's low-level Server, with
hand-written input schemas like Kiwi's) has its tool names and the argument that
matters to the gateway: `project_path`, which execute, load and sign require, search
takes, and help does not have. Each tool answers with the arguments exactly as they
arrived, as JSON, so a test can tell what the gateway forwarded. (tests/servers/kiwi_like.py
is the other Kiwi stand-in: it reads a workspace and answers `execute` as Kiwi does.)
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

_ITEM = {"type": "string", "enum": ["directive", "tool", "knowledge"]}
_PROJECT = {"type": "string", "description": "The project whose .ai/ folder to use."}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


TOOLS = {
    "search": _schema(
        {"item_type": _ITEM, "query": {"type": "string"}, "project_path": _PROJECT}, ["item_type", "query"]
    ),
    "load": _schema(
        {"item_type": _ITEM, "item_id": {"type": "string"}, "project_path": _PROJECT},
        ["item_type", "item_id", "project_path"],
    ),
    "execute": _schema(
        {
            "action": {"type": "string"},
            "item_type": _ITEM,
            "item_id": {"type": "string"},
            "project_path": _PROJECT,
            "parameters": {"type": "object"},
        },
        ["action", "item_type", "item_id", "project_path"],
    ),
    "sign": _schema(
        {"item_type": _ITEM, "item_id": {"type": "string"}, "project_path": _PROJECT},
        ["item_type", "item_id", "project_path"],
    ),
    "help": _schema({"topic": {"type": "string"}}, []),
}


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(
        tools=[
            types.Tool(name=name, description=f"Kiwi {name}", input_schema=schema)
            for name, schema in TOOLS.items()
        ]
    )


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    arguments = dict(params.arguments or {})
    schema = TOOLS.get(params.name)
    missing = [r for r in (schema or {}).get("required", []) if r not in arguments]
    if schema is None or missing:
        reason = f"unknown tool {params.name}" if schema is None else f"missing {', '.join(missing)}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=reason)], is_error=True)
    text = json.dumps({"tool": params.name, "arguments": arguments}, sort_keys=True)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


server = Server("kiwi", version="0.1.0", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)

"""How the aggregated endpoint reaches the gateway: in this process, or over the channel layer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from django.conf import settings

from mcps.gateway import embedded, rpc
from mcps.gateway.service import Gateway

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
LogFn = Callable[[dict[str, Any]], Awaitable[None]]


class Router(Protocol):
    async def catalog(self) -> dict[str, list[dict[str, Any]]]:
        """Each connected server's tools, by server id."""
        ...

    def input_schema(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        """The tool's input schema if known here and now (None: unknown, do not check)."""
        ...

    async def annotations(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        """The tool's MCP annotations from the catalog (None: unknown tool or none given)."""
        ...

    async def call(
        self, mcp_id: str, tool: str, arguments: dict[str, Any], progress: ProgressFn, log: LogFn
    ) -> dict[str, Any]:
        """The CallToolResult (wire shape), or rpc.GatewayError."""
        ...


class LocalRouter:
    """A gateway on this event loop: no hop at all."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def catalog(self) -> dict[str, list[dict[str, Any]]]:
        return (await self.gateway.handle("catalog", {}))["servers"]

    def input_schema(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        return self.gateway.listed_schema(mcp_id, tool)

    async def annotations(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        connection = self.gateway.connections.get(mcp_id)
        entry = connection.tools.get(tool) if connection is not None else None
        return entry.get("annotations") if entry is not None else None

    async def call(
        self, mcp_id: str, tool: str, arguments: dict[str, Any], progress: ProgressFn, log: LogFn
    ) -> dict[str, Any]:
        args = {"mcp_id": mcp_id, "tool": tool, "arguments": arguments}
        return (await self.gateway.handle("call_tool", args, progress, log))["result"]


class ChannelRouter:
    """The gateway process (`run_gateway`), over the channel layer."""

    def __init__(self) -> None:
        self._catalog: dict[str, dict[str, dict[str, Any]]] = {}  # as last listed

    async def catalog(self) -> dict[str, list[dict[str, Any]]]:
        servers = (await rpc.request("catalog", {}, timeout=10))["servers"]
        self._catalog = {s: {t["name"]: t for t in tools} for s, tools in servers.items()}
        return servers

    def input_schema(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        entry = self._catalog.get(mcp_id, {}).get(tool)
        return entry.get("inputSchema") if entry is not None else None

    async def annotations(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        entry = self._catalog.get(mcp_id, {}).get(tool)
        if entry is None:  # never listed here, or new since: list once (a stateless client may not)
            try:
                await self.catalog()
            except rpc.GatewayError:
                return None
            entry = self._catalog.get(mcp_id, {}).get(tool)
        return entry.get("annotations") if entry is not None else None

    async def call(
        self, mcp_id: str, tool: str, arguments: dict[str, Any], progress: ProgressFn, log: LogFn
    ) -> dict[str, Any]:
        async def on_progress(p: dict[str, Any]) -> None:
            await progress(p["progress"], p.get("total"), p.get("message"))

        args = {"mcp_id": mcp_id, "tool": tool, "arguments": arguments}
        answer = await rpc.request(
            "call_tool", args, timeout=settings.GATEWAY_CALL_TIMEOUT, on_progress=on_progress, on_log=log
        )
        return answer["result"]


class WebRouter:
    """For the web process: the embedded gateway when it runs here, else the channel layer."""

    def __init__(self) -> None:
        self._remote = ChannelRouter()

    def _pick(self) -> Router:
        gateway = embedded.running()
        return LocalRouter(gateway) if gateway is not None else self._remote

    async def catalog(self) -> dict[str, list[dict[str, Any]]]:
        return await self._pick().catalog()

    def input_schema(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        return self._pick().input_schema(mcp_id, tool)

    async def annotations(self, mcp_id: str, tool: str) -> dict[str, Any] | None:
        return await self._pick().annotations(mcp_id, tool)

    async def call(
        self, mcp_id: str, tool: str, arguments: dict[str, Any], progress: ProgressFn, log: LogFn
    ) -> dict[str, Any]:
        return await self._pick().call(mcp_id, tool, arguments, progress, log)

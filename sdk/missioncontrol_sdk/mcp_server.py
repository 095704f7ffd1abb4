"""Report every tool call of a server built with the `mcp` SDK (2.x) as a thread.

`instrument(server, client)` appends a context-tier middleware to the server (an
`MCPServer` or a low-level `Server`): each `tools/call` becomes a thread with a
tool_call step (arguments, duration) and a tool_result step (ok or error). Given
`permission`, the server's own decision is asked first and reported as a permission
check and a check_permission step; a denied call answers an error result and never
reaches the tool.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import CallToolResult, TextContent

from missioncontrol_sdk.client import MissionControl


@dataclass(frozen=True)
class Decision:
    """A server's answer to "may this call run?"."""

    granted: bool
    reason: str = ""
    user_id: str = ""
    rules_checked: tuple[str, ...] = ()


PermissionCheck = Callable[[str, Mapping[str, Any]], Decision | Awaitable[Decision]]


def _is_error(result: HandlerResult) -> bool:
    if isinstance(result, CallToolResult):
        return bool(result.is_error)
    return isinstance(result, dict) and result.get("isError") is True


def _summary(result: HandlerResult, limit: int = 500) -> str:
    if isinstance(result, CallToolResult):
        texts = [c.text for c in result.content if isinstance(c, TextContent)]
        text = "\n".join(texts) if texts else json.dumps(result.structured_content, default=str)
    else:
        text = json.dumps(result, default=str)
    return text[:limit]


class MissionControlMiddleware:
    """The middleware `instrument` installs."""

    def __init__(
        self, client: MissionControl, server_name: str, mcp_id: str | None, permission: PermissionCheck | None
    ) -> None:
        self.client = client
        self.server_name = server_name
        self.mcp_id = mcp_id
        self.permission = permission

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or not ctx.params:
            return await call_next(ctx)
        tool = str(ctx.params.get("name", ""))
        arguments = dict(ctx.params.get("arguments") or {})
        context = {
            "via": "mcp",
            "server": self.server_name,
            "tool": tool,
            "request_id": None if ctx.request_id is None else str(ctx.request_id),
            "protocol_version": ctx.protocol_version,
        }
        user_input = f"{tool}({json.dumps(arguments, default=str)})"
        with self.client.thread(user_input, mcp_id=self.mcp_id, execution_context=context) as thread:
            if self.permission is not None:
                decision = self.permission(tool, arguments)
                if not isinstance(decision, Decision):
                    decision = await decision
                resource = f"{self.server_name}/{tool}"
                thread.permission(
                    resource,
                    "execute",
                    decision.granted,
                    user_id=decision.user_id,
                    reason=decision.reason,
                    rules_checked=list(decision.rules_checked),
                )
                thread.step(
                    "check_permission",
                    f"{resource}: {'granted' if decision.granted else 'denied'}",
                    {"reason": decision.reason, "user_id": decision.user_id},
                    status="complete" if decision.granted else "error",
                    duration_ms=0.0,
                )
                if not decision.granted:
                    thread.status = "error"
                    text = f"Permission denied: {decision.reason}" if decision.reason else "Permission denied"
                    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
            with thread.step("tool_call", tool, {"arguments": arguments}):
                result = await call_next(ctx)
            failed = _is_error(result)
            thread.step(
                "tool_result",
                f"{tool}: {'error' if failed else 'ok'}",
                {"summary": _summary(result)},
                status="error" if failed else "complete",
            )
            if failed:
                thread.status = "error"
            return result


def instrument(
    server: Any,
    client: MissionControl,
    *,
    mcp_id: str | None = None,
    permission: PermissionCheck | None = None,
) -> MissionControlMiddleware:
    """Report `server`'s tool calls through `client`; returns the installed middleware."""
    name = getattr(server, "name", None) or "mcp-server"
    middleware = MissionControlMiddleware(client, name, mcp_id or client.mcp_id, permission)
    server.middleware.append(middleware)
    return middleware

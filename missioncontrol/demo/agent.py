"""The demo agent: asks about times around the world, calls mcp-server-time, reports through the SDK.

One round is a parent thread (the question, a plan, the transcript) with one child thread
per city it looks up; each tool call is a tool_call + tool_result step, each call is
preceded by the agent's permission check, and what it logs lands on the thread it was
working on. Every third round also tries an invalid time zone (an error step and a
warning) and a tool outside its allow-list (a denied permission check), so the views
have failures to show.

Tools come from a `Tools`: Mission Control's own /mcp endpoint (the live agent that
`serve` starts) or mcp-server-time spawned over stdio (`seed_demo`'s first round).
Through /mcp each call names the agent's thread as its parent, so the thread /mcp
records for it (on the `time` server) is a child of the agent's own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from mcp import Client, StdioServerParameters
from missioncontrol_sdk import MissionControl, ThreadContext

from mcps.endpoint.gate import PARENT_META_KEY

logger = logging.getLogger("missioncontrol.demo.agent")

AGENT_ID = "demo-agent"
TIME_SERVER = "time"
CITIES = (
    ("Tokyo", "Asia/Tokyo"),
    ("New York", "America/New_York"),
    ("London", "Europe/London"),
    ("Sydney", "Australia/Sydney"),
    ("Sao Paulo", "America/Sao_Paulo"),
    ("Nairobi", "Africa/Nairobi"),
)
ALLOWED_TOOLS = ("get_current_time", "convert_time")


class ToolFailed(Exception):
    """The server answered the call with an error result."""


class Tools(Protocol):
    async def call(self, name: str, arguments: dict[str, Any], thread_id: str = "") -> dict[str, Any]: ...


class _ClientTools:
    def __init__(self, client: Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def call(self, name: str, arguments: dict[str, Any], thread_id: str = "") -> dict[str, Any]:
        # Through /mcp, the call's own thread becomes a child of the agent's (and inherits
        # its grants, audit/inheritance.py); a server spawned over stdio ignores the key.
        meta: Any = {PARENT_META_KEY: thread_id} if thread_id else None
        result = await self.client.call_tool(f"{self.prefix}{name}", arguments, meta=meta)
        if result.is_error:
            text = " ".join(getattr(c, "text", "") for c in result.content)
            raise ToolFailed(text or f"{name} failed")
        return dict(result.structured_content or {})


@asynccontextmanager
async def tools_via_endpoint(url: str, headers: dict[str, str]) -> AsyncIterator[Tools]:
    """mcp-server-time's tools through Mission Control's /mcp (named `time__<tool>` there)."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{url.rstrip('/')}/mcp", http_client=http)) as client,  # type: ignore[arg-type]
    ):
        yield _ClientTools(client, f"{TIME_SERVER}__")


@asynccontextmanager
async def tools_via_stdio() -> AsyncIterator[Tools]:
    """mcp-server-time spawned as a child process, as the managed server is."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server_time"])
    async with Client(params) as client:
        yield _ClientTools(client, "")


async def _call(thread: ThreadContext, tools: Tools, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    granted = name in ALLOWED_TOOLS
    thread.permission(
        f"{TIME_SERVER}/{name}",
        "execute",
        granted,
        user_id=AGENT_ID,
        reason="on the demo agent's allow-list" if granted else "not on the demo agent's allow-list",
        rules_checked=["demo-allow-list"],
    )
    if not granted:
        thread.step("check_permission", f"{TIME_SERVER}/{name}: denied", status="error", duration_ms=0.0)
        raise PermissionError(f"{name} is not on the allow-list")
    called = {"mcp_id": TIME_SERVER, "tool": name}
    # A call that fails ends its `with` block with an exception: the step is recorded as
    # failed, its error in its details, and no result follows it.
    with thread.step("tool_call", f"{TIME_SERVER}.{name}", {**called, "arguments": arguments}) as step:
        result = await tools.call(name, arguments, thread.id)
        step.details["result"] = result
    thread.step(
        "tool_result",
        f"{TIME_SERVER}.{name}: ok",
        {**called, "result": result},
        status="complete",
        duration_ms=0.0,
    )
    return result


async def run_round(tools: Tools, mc: MissionControl, number: int) -> str:
    """One question answered; the parent thread's id."""
    (city_a, zone_a), (city_b, zone_b) = CITIES[number % len(CITIES)], CITIES[(number + 1) % len(CITIES)]
    question = f"What time is it in {city_a} and in {city_b}, and what is 09:00 in {city_a} in {city_b}?"
    context = {"agent": AGENT_ID, "round": number, "model": "scripted"}
    with mc.thread(user_input=question, execution_context=context) as thread:
        thread.message("user", question)
        logger.info("round %d: %s", number, question)
        thread.step("script", "plan: look up both cities, then convert", status="complete", duration_ms=0.0)
        times: dict[str, str] = {}
        for city, zone in ((city_a, zone_a), (city_b, zone_b)):
            with thread.child(user_input=f"Look up the time in {city}", execution_context=context) as child:
                result = await _call(child, tools, "get_current_time", {"timezone": zone})
                times[city] = str(result.get("datetime", ""))[11:16]
                child.message("agent", f"It is {times[city]} in {city}.")
                logger.info("%s: %s", city, result.get("datetime"))
        converted = await _call(
            thread,
            tools,
            "convert_time",
            {"source_timezone": zone_a, "time": "09:00", "target_timezone": zone_b},
        )
        target = str(converted.get("target", {}).get("datetime", ""))[11:16]
        if number % 3 == 0:
            try:
                await _call(thread, tools, "get_current_time", {"timezone": "Mars/Olympus_Mons"})
            except ToolFailed as exc:
                logger.warning("no such time zone, carrying on: %s", exc)
            try:
                await _call(thread, tools, "set_system_time", {"time": "09:00"})
            except PermissionError as exc:
                logger.warning("refused: %s", exc)
        answer = (
            f"It is {times[city_a]} in {city_a} and {times[city_b]} in {city_b}; "
            f"09:00 in {city_a} is {target} in {city_b}."
        )
        thread.message("agent", answer)
        logger.info("answered: %s", answer)
    return thread.id

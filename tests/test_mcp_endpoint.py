"""The aggregated MCP server for agents, in front of real MCP servers.

An `mcp` SDK client talks to the server /mcp and mcp_proxy are built on, in both
protocol eras, through a gateway holding mcp-server-time, mcp-server-git and
server-everything; the HTTP transport itself is covered by test_mcp_http.py.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from audit.models import PermissionEvent
from mcps.endpoint.recorder import CallRecorder
from mcps.endpoint.router import ChannelRouter, LocalRouter, Router
from mcps.endpoint.server import build_server
from mcps.gateway.service import Gateway
from mcps.models import AGGREGATE_ID, MCPServer
from missioncontrol.ingest.batcher import EventBatcher
from threads.models import ExecutionStep, Thread

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]


@dataclass
class Endpoint:
    server: Any
    batcher: EventBatcher

    def client(self, mode: str = "auto", **kwargs: Any) -> Client:
        return Client(self.server, mode=mode, **kwargs)  # type: ignore[arg-type]


def _endpoint(router: Router, user_id: int | None = None) -> Endpoint:
    """The aggregated server over `router`, its calls made by `user_id` (no user: none)."""
    batcher = EventBatcher("test calls", linger=0)
    recorder = CallRecorder(batcher)

    def session_of(ctx: Any) -> Any:
        return recorder.session(
            ("test",), via="test", principal="alice", client={"name": "pytest"}, user_id=user_id
        )

    return Endpoint(build_server(router, recorder, session_of), batcher)


@pytest.fixture
async def endpoint(gateway: Gateway) -> AsyncIterator[Endpoint]:
    ep = _endpoint(LocalRouter(gateway))
    yield ep
    await ep.batcher.flush()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_agents_get_every_connected_servers_tools_under_their_server_name(
    endpoint: Endpoint, mode: str
) -> None:
    async with endpoint.client(mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        assert client.server_info is not None and client.server_info.name == "mission-control"
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"time__get_current_time", "git__git_log", "everything__echo"} <= set(tools)
    assert all(name.partition("__")[0] in ("time", "git", "everything", "missioncontrol") for name in tools)
    schema = tools["time__get_current_time"].input_schema
    assert schema["required"] == ["timezone"]  # the server's schema, untouched


async def test_each_call_is_forwarded_then_recorded_as_a_thread_on_the_server_that_answered_it(
    endpoint: Endpoint,
) -> None:
    async with endpoint.client() as client:
        result = await client.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
        assert not result.is_error and result.structured_content["timezone"] == "Europe/Paris"
        echoed = await client.call_tool("everything__echo", {"message": "hi"})
    await endpoint.batcher.flush()

    time_thread = await Thread.objects.aget(mcp_id="time")
    echo_thread = await Thread.objects.aget(mcp_id="everything")
    assert result.meta is not None and result.meta["mc/thread_id"] == time_thread.id
    assert echoed.meta is not None and echoed.meta["mc/thread_id"] == echo_thread.id
    # Each call's thread ended with it; the client session groups both.
    assert (time_thread.status, echo_thread.status) == ("complete", "complete")
    assert time_thread.session_id is not None and time_thread.session_id == echo_thread.session_id
    assert not await Thread.objects.filter(mcp_id=AGGREGATE_ID).aexists()
    assert time_thread.execution_context["principal"] == "alice"
    steps = [s async for s in ExecutionStep.objects.filter(thread=time_thread).order_by("sequence")]
    assert [(s.sequence, s.step_type, s.description) for s in steps] == [
        (0, "tool_call", "time__get_current_time"),
        (1, "tool_result", "time__get_current_time: ok"),
    ]
    assert steps[0].details == {
        "mcp_id": "time",
        "tool": "get_current_time",
        "arguments": {"timezone": "Europe/Paris"},
    }
    assert steps[1].duration_ms > 0 and steps[1].status == "complete"
    assert "Europe/Paris" in steps[1].details["summary"]
    echo_result = await ExecutionStep.objects.aget(thread=echo_thread, step_type="tool_result")
    assert echo_result.details["summary"] == "Echo: hi"
    checks = [p async for p in PermissionEvent.objects.order_by("timestamp")]
    assert [(c.resource, c.granted, c.user_id) for c in checks] == [
        ("time/get_current_time", True, "alice"),
        ("everything/echo", True, "alice"),
    ]
    # No rule at all: the configured default (allow) decided, and the check says so.
    assert all(c.reason.endswith("no rule matched: default allow") for c in checks)
    assert checks[0].action == "read"  # mcp-server-time's readOnlyHint


async def test_progress_and_the_servers_log_notifications_reach_the_agent(endpoint: Endpoint) -> None:
    progress: list[tuple[float, float | None]] = []
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with endpoint.client("legacy", logging_callback=on_log) as client:
        result = await client.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 1, "steps": 3},
            progress_callback=on_progress,
        )
        assert "completed" in result.content[0].text
        assert progress == [(1, 3), (2, 3), (3, 3)]
        # server-everything logs once at once when simulated logging is switched on.
        await client.call_tool("everything__toggle-simulated-logging", {})
        await client.call_tool("everything__toggle-simulated-logging", {})
    assert logs, "the server's log notification was not relayed"
    assert logs[0].logger is not None and logs[0].logger.startswith("everything")


async def test_bad_calls_get_clear_errors_and_are_recorded(endpoint: Endpoint) -> None:
    async with endpoint.client() as client:
        with pytest.raises(MCPError) as unknown_server:
            await client.call_tool("nope__x", {})
        assert unknown_server.value.code == types.INVALID_PARAMS
        assert "Unknown tool: nope__x" in unknown_server.value.message
        with pytest.raises(MCPError, match="unknown tool 'nope' on server 'time'"):
            await client.call_tool("time__nope", {})
        with pytest.raises(MCPError, match="expected server__tool"):
            await client.call_tool("no-separator", {})
        bad = await client.call_tool("time__get_current_time", {"timezone": 5})
        assert bad.is_error
        assert bad.content[0].text == (
            "fails the tool's input schema: 5 is not of type 'string' (arguments.timezone)"
        )
        good = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not good.is_error
    await endpoint.batcher.flush()

    results = [
        (s.description, s.status, s.details.get("error", ""))
        async for s in ExecutionStep.objects.filter(step_type="tool_result").order_by("timestamp")
    ]
    assert results == [
        ("nope__x: error", "error", "no connected server 'nope' (unknown, disabled or not managed)"),
        ("time__nope: error", "error", "unknown tool 'nope' on server 'time'"),
        (
            "time__get_current_time: error",
            "error",
            "fails the tool's input schema: 5 is not of type 'string'",
        ),
        ("time__get_current_time: ok", "complete", ""),
    ]
    # Failed calls are failed threads; a server that does not exist is not invented:
    # Mission Control answered that call, and files it under itself.
    threads = [(t.mcp_id, t.status, t.error_count) async for t in Thread.objects.order_by("started_at")]
    assert threads == [
        (AGGREGATE_ID, "error", 1),
        ("time", "error", 1),
        ("time", "error", 1),
        ("time", "complete", 0),
    ]
    assert not await MCPServer.objects.filter(id="nope").aexists()


async def test_through_the_channel_layer_as_a_web_process_reaches_run_gateway(gateway: Gateway) -> None:
    endpoint = _endpoint(ChannelRouter())
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with endpoint.client("legacy") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"time__get_current_time", "everything__echo"} <= tools
        echo = await client.call_tool("everything__echo", {"message": "via redis"})
        assert echo.content[0].text == "Echo: via redis"
        await client.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 0.6, "steps": 2},
            progress_callback=on_progress,
        )
        assert progress == [1, 2]
    await endpoint.batcher.flush()
    assert await ExecutionStep.objects.filter(step_type="tool_result", status="complete").acount() == 2

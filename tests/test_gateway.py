"""The gateway against real MCP servers spawned by the tests.

PyPI mcp-server-time and mcp-server-git (stdio, the 2026-07-28 stateless protocol),
npm @modelcontextprotocol/server-everything (stdio, and its Streamable HTTP mode; the
2025-11-25 handshake protocol), connected at once through one gateway.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from logs.models import LogEntry
from mcps.gateway import rpc
from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from mcps.models import HealthCheck, MCPServer, Tool
from tests.mcp_servers import EVERYTHING, api, everything_over_http, register, status, until
from tests.processes import free_port, is_descendant

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]


async def test_three_servers_connect_with_their_protocol_and_catalog(gateway: Gateway) -> None:
    servers = {s["id"]: s for s in (await api("GET", "/api/mcps")).json()}
    assert {servers[i]["status"] for i in ("time", "git", "everything")} == {"connected"}
    assert servers["time"]["protocol_version"] == "2026-07-28"
    assert servers["everything"]["protocol_version"] == "2025-11-25"
    assert servers["time"]["server_info"]["name"] == "mcp-time"
    tools = [t["name"] for t in (await api("GET", "/api/mcps/time/tools")).json()]
    assert tools == ["convert_time", "get_current_time"]
    assert await Tool.objects.filter(server_id="git", name="git_log").aexists()
    detail = (await api("GET", "/api/mcps/everything")).json()
    assert detail["capabilities"]["tools"] is not None
    assert detail["connection"]["transport"] == "stdio"


async def test_it_calls_tools_on_each_server(gateway: Gateway, repo: Path) -> None:
    now = await api("POST", "/api/mcps/time/tools/get_current_time/call", {"arguments": {"timezone": "UTC"}})
    assert now.status_code == 200, now.text
    assert now.json()["result"]["structuredContent"]["timezone"] == "UTC"
    log = await api("POST", "/api/mcps/git/tools/git_log/call", {"arguments": {"repo_path": str(repo)}})
    assert log.status_code == 200, log.text
    assert "first" in log.json()["result"]["content"][0]["text"]
    echo = await api("POST", "/api/mcps/everything/tools/echo/call", {"arguments": {"message": "hi"}})
    assert "hi" in echo.json()["result"]["content"][0]["text"]


async def test_progress_streams_before_the_result(gateway: Gateway) -> None:
    response = await api(
        "POST",
        "/api/mcps/everything/tools/trigger-long-running-operation/call?stream=1",
        {"arguments": {"duration": 1, "steps": 3}},
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["type"] for line in lines] == ["progress", "progress", "progress", "result"]
    assert [line["progress"] for line in lines[:3]] == [1, 2, 3] and lines[0]["total"] == 3
    assert "completed" in lines[-1]["result"]["content"][0]["text"]


async def test_server_stderr_and_log_notifications_become_log_entries(gateway: Gateway) -> None:
    await until(
        lambda: LogEntry.objects.filter(service="everything", message__contains="Starting").exists(),
        what="the stderr line",
    )
    await api("POST", "/api/mcps/everything/tools/toggle-simulated-logging/call", {"arguments": {}})
    await until(
        lambda: (
            LogEntry.objects.filter(service="everything", context__logger="everything").exists()
            or LogEntry.objects.filter(service="everything").exclude(context__logger="stderr").exists()
        ),
        timeout=30,
        what="an MCP log notification",
    )


async def test_bad_input_gets_a_clear_error_and_the_others_keep_serving(gateway: Gateway) -> None:
    unknown_server = await api("POST", "/api/mcps/nope/tools/x/call", {"arguments": {}})
    assert unknown_server.status_code == 404
    unknown_tool = await api("POST", "/api/mcps/time/tools/nope/call", {"arguments": {}})
    assert unknown_tool.status_code == 404
    assert unknown_tool.json()["error"] == {"field": "tool", "reason": "unknown tool 'nope' on server 'time'"}
    bad_args = await api("POST", "/api/mcps/time/tools/get_current_time/call", {"arguments": {"timezone": 5}})
    assert bad_args.status_code == 400
    assert bad_args.json()["error"]["field"] == "arguments.timezone"
    assert "is not of type 'string'" in bad_args.json()["error"]["reason"]
    missing = await api("POST", "/api/mcps/time/tools/get_current_time/call", {"arguments": {}})
    assert missing.json()["error"]["reason"].endswith("'timezone' is a required property")
    not_json = await api("POST", "/api/mcps/time/tools/get_current_time/call", {"arguments": [1]})
    assert not_json.status_code == 400 and not_json.json()["error"]["field"] == "arguments"

    await sync_to_async(register)("ghost", transport="stdio", command="/nonexistent/mcp-server")
    await gateway.discover()
    await until(lambda: status("ghost") in ("degraded", "disconnected"), what="ghost to fail")
    ghost = await sync_to_async(MCPServer.objects.get)(id="ghost")
    assert "nonexistent" in ghost.last_error or "No such file" in ghost.last_error
    call = await api("POST", "/api/mcps/ghost/tools/x/call", {"arguments": {}})
    assert call.status_code == 503 and call.headers["Retry-After"] == "5"
    still = await api(
        "POST", "/api/mcps/time/tools/get_current_time/call", {"arguments": {"timezone": "UTC"}}
    )
    assert still.status_code == 200


async def test_a_killed_server_is_seen_and_reconnected_with_its_tools(gateway: Gateway) -> None:
    await api("POST", "/api/mcps/everything/tools/echo/call", {"arguments": {"message": "warm"}})
    pids = subprocess.run(["pgrep", "-f", str(EVERYTHING)], capture_output=True, text=True).stdout.split()
    mine = [int(p) for p in pids if is_descendant(int(p), os.getpid())]
    assert mine, "the everything server is not a child of this test"
    seen: list[str] = []

    def record() -> bool:
        seen.append(status("everything"))
        return seen[-1] != "connected"

    for pid in mine:
        os.kill(pid, signal.SIGKILL)
    await until(record, timeout=10, what="the status to change")
    assert seen[-1] in ("degraded", "connecting")
    await until(lambda: status("everything") == "connected", what="the reconnect")
    echo = await api("POST", "/api/mcps/everything/tools/echo/call", {"arguments": {"message": "back"}})
    assert echo.status_code == 200 and "back" in echo.json()["result"]["content"][0]["text"]
    # The health changes are the server's logs, with the error.
    await gateway.logs.flush()
    health = LogEntry.objects.filter(mcp_id="everything", service="gateway").order_by("timestamp")
    logged = [(e.level, e.message) async for e in health]
    assert logged[:2] == [("INFO", "everything: connecting"), ("INFO", "everything: connected")]
    assert logged[2][0] == "WARN" and logged[2][1].startswith("everything: degraded, reconnecting: ")
    assert logged[-1] == ("INFO", "everything: reconnected")


async def test_a_server_registered_through_the_api_connects_without_waiting_for_discovery(
    gateway: Gateway,
) -> None:
    assert gateway.discovery_interval >= 30
    response = await api(
        "POST",
        "/api/mcps",
        {"id": "time2", "command": sys.executable, "args": ["-m", "mcp_server_time"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["transport"] == "stdio"
    await until(lambda: status("time2") == "connected", timeout=20, what="time2 to connect")
    bad = await api("POST", "/api/mcps", {"id": "x", "url": "not a url"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "url"


async def test_health_checks_are_recorded_per_server(gateway: Gateway) -> None:
    results = await gateway.check_health()
    assert {r["mcp_id"] for r in results if r["ok"]} == {"time", "git", "everything"}
    health = (await api("GET", "/api/mcps/time/health")).json()
    assert health["status"] == "connected" and health["checks"][0]["ok"] is True
    assert health["checks"][0]["latency_ms"] > 0
    assert await HealthCheck.objects.filter(server_id="everything", ok=True).aexists()


async def test_reconnect_on_request(gateway: Gateway) -> None:
    response = await api("POST", "/api/mcps/time/reconnect")
    assert response.status_code == 202 and response.json() == {"mcp_id": "time", "reconnecting": True}
    await until(lambda: status("time") != "connected", timeout=5, what="the session to drop")
    await until(lambda: status("time") == "connected", what="the reconnect")


async def test_websocket_commands_call_list_and_stream_progress(gateway: Gateway) -> None:
    from tests.conftest import Socket

    async with Socket() as ws:
        await ws.send(type="command", channel="mcp:time", payload={"command": "list_tools"}, request_id="l")
        listed = await ws.recv(timeout=10)
        assert listed["type"] == "response" and listed["request_id"] == "l"
        assert sorted(t["name"] for t in listed["payload"]["tools"]) == ["convert_time", "get_current_time"]
        await ws.send(
            type="command",
            channel="mcp:everything",
            payload={
                "command": "call_tool",
                "tool": "trigger-long-running-operation",
                "arguments": {"duration": 1, "steps": 2},
            },
            request_id="c",
        )
        frames = [await ws.recv(timeout=10) for _ in range(3)]
        assert [f["type"] for f in frames] == ["event", "event", "response"]
        assert frames[0]["payload"]["type"] == "tool.progress" and frames[0]["request_id"] == "c"
        assert "completed" in frames[2]["payload"]["result"]["content"][0]["text"]
        await ws.send(
            type="command",
            channel="mcp:time",
            payload={"command": "call_tool", "tool": "nope"},
            request_id="e",
        )
        error = await ws.recv(timeout=10)
        assert error["type"] == "error" and error["payload"]["status"] == 404


async def test_a_websocket_tool_call_passes_the_policies_and_is_recorded_like_a_routed_one(
    gateway: Gateway,
) -> None:
    from audit.models import PermissionEvent, PolicyRule
    from mcps.endpoint.http import mcp_endpoint
    from tests.conftest import Socket

    await PolicyRule.objects.acreate(server="time", tool="*", effect="deny", description="no time here")
    async with Socket() as ws:
        call = {"command": "call_tool", "tool": "get_current_time", "arguments": {"timezone": "UTC"}}
        await ws.send(type="command", channel="mcp:time", payload=call, request_id="t")
        denied = await ws.recv(timeout=10)
        assert denied["type"] == "error" and denied["payload"]["status"] == 403, denied
        assert "no time here" in denied["payload"]["reason"]
        echo = {"command": "call_tool", "tool": "echo", "arguments": {"message": "fine"}}
        await ws.send(type="command", channel="mcp:everything", payload=echo, request_id="e")
        answered = await ws.recv(timeout=10)
        assert (
            answered["type"] == "response" and "fine" in answered["payload"]["result"]["content"][0]["text"]
        )
    await mcp_endpoint.batcher.flush()
    threads = [denied["payload"]["thread_id"], answered["payload"]["thread_id"]]
    found = PermissionEvent.objects.filter(thread_id__in=threads)
    checks = {p.thread_id: (p.resource, p.granted) async for p in found}
    assert checks == {threads[0]: ("time/get_current_time", False), threads[1]: ("everything/echo", True)}


async def test_streamable_http_server(tmp_path: Path) -> None:
    port = free_port()
    proc = await everything_over_http(port)
    try:
        await sync_to_async(register)(
            "remote", transport="streamable_http", url=f"http://127.0.0.1:{port}/mcp"
        )
        gw = Gateway(Backoff(0.1, 0.5))
        await gw.start()
        try:
            await until(lambda: status("remote") == "connected", what="the HTTP server to connect")
            echo = await api(
                "POST", "/api/mcps/remote/tools/echo/call", {"arguments": {"message": "over http"}}
            )
            assert "over http" in echo.json()["result"]["content"][0]["text"]
        finally:
            await gw.stop()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_calls_fail_with_503_when_no_gateway_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    await sync_to_async(register)("time", transport="stdio", command="x")
    monkeypatch.setattr(rpc, "ACK_SECONDS", 0.3)
    response = await api("POST", "/api/mcps/time/tools/get_current_time/call", {"arguments": {}})
    assert response.status_code == 503
    assert "gateway is not running" in response.json()["error"]["reason"]


async def test_the_health_task_sees_a_dead_http_server_then_it_reconnects() -> None:
    from mcps.tasks import check_health

    port = free_port()
    proc = await everything_over_http(port)
    await sync_to_async(register)("remote", transport="streamable_http", url=f"http://127.0.0.1:{port}/mcp")
    gw = Gateway(Backoff(0.2, 0.5))
    await gw.start()
    try:
        await until(lambda: status("remote") == "connected", what="the HTTP server to connect")
        healthy = await sync_to_async(check_health.apply)()
        assert [(r["mcp_id"], r["ok"]) for r in healthy.get()] == [("remote", True)]

        proc.kill()
        proc.wait(10)
        sick = (await sync_to_async(check_health.apply)()).get()
        assert sick[0]["ok"] is False and sick[0]["error"]
        await until(lambda: status("remote") in ("degraded", "disconnected"), timeout=5, what="degraded")
        assert (
            not await HealthCheck.objects.filter(server_id="remote")
            .order_by("-checked_at")
            .values_list("ok", flat=True)
            .afirst()
        )

        proc = await everything_over_http(port)
        await until(lambda: status("remote") == "connected", what="the reconnect")
        echo = await api("POST", "/api/mcps/remote/tools/echo/call", {"arguments": {"message": "back"}})
        assert echo.status_code == 200
    finally:
        await gw.stop()
        proc.kill()
        proc.wait(10)


async def test_without_celery_beat_the_web_process_runs_the_health_schedule(gateway: Gateway) -> None:
    from missioncontrol.scheduler import InProcessScheduler

    scheduler = InProcessScheduler({"health": {"task": "mcps.check_health", "schedule": 0.2}})
    scheduler.start()
    try:
        await until(
            lambda: scheduler.runs.get("health", 0) >= 2 and HealthCheck.objects.filter(ok=True).count() >= 6,
            timeout=20,
            what="two rounds",
        )
    finally:
        await scheduler.stop()
    assert scheduler.runs["health"] >= 2
    assert set(
        await sync_to_async(lambda: set(HealthCheck.objects.values_list("server_id", flat=True)))()
    ) == {
        "time",
        "git",
        "everything",
    }


@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
async def test_a_servers_changed_tool_list_reaches_the_catalog_in_both_eras(
    era: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcps.endpoint.router import LocalRouter
    from mcps.gateway import connection as connection_module

    await sync_to_async(register)(
        "growing", transport="stdio", command=sys.executable, args=["-m", "tests.servers.growing"]
    )
    gw = Gateway(Backoff(0.1, 0.5))
    if era == "2025-11-25":  # the handshake era: the server pushes list_changed unasked
        original = connection_module.Client

        def legacy_client(*args: Any, **kwargs: Any) -> Any:
            return original(*args, mode="legacy", **kwargs)

        monkeypatch.setattr(connection_module, "Client", legacy_client)
    try:
        await gw.start()
        await until(lambda: status("growing") == "connected", what="the growing server")
        assert (await sync_to_async(MCPServer.objects.get)(id="growing")).protocol_version == era
        relayed: list[Any] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            relayed.append((done, total, message))

        async def log(entry: dict[str, Any]) -> None:
            relayed.append(entry)

        grown = await LocalRouter(gw).call("growing", "grow", {"name": "sprout"}, progress, log)
        assert grown["content"][0]["text"] == "added sprout"
        await until(
            lambda: Tool.objects.filter(server_id="growing", name="sprout").exists(),
            timeout=10,
            what="the new tool in the catalog",
        )
        assert "sprout" in gw.connections["growing"].tools
    finally:
        await gw.stop()


def test_a_stderr_lines_level_is_its_records_not_a_word_in_its_message() -> None:
    from mcps.gateway.connection import _stderr_level

    # mcp-server-time's own output (rich): an INFO record wrapped over indented lines.
    lines = [
        "[12/07/26 17:03:31] INFO     Tool 'get_current_time' failed:       server.py:453",
        '                             "Error executing tool',
        "                             get_current_time: Invalid timezone:",
    ]
    levels, level = [], "INFO"
    for line in lines:
        level = _stderr_level(line, level)
        levels.append(level)
    assert levels == ["INFO", "INFO", "INFO"]
    assert _stderr_level("ERROR:root:disk full") == "ERROR"
    assert _stderr_level("2026-12-07 WARNING low memory") == "WARN"
    assert _stderr_level("ValueError: bad input") == "ERROR"
    assert (
        _stderr_level("    raise ValueError(x)", "ERROR") == "ERROR"
    )  # a traceback keeps its record's level
    assert _stderr_level("Starting server on stdio") == "INFO"

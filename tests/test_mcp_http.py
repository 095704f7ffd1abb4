"""Agents on Mission Control's own MCP endpoints, end to end, in real processes.

/mcp: a daphne process on the embedded default holds mcp-server-time and
server-everything; an `mcp` SDK client calls a namespaced tool over Streamable HTTP,
and the call appears as a thread with steps on the WebSocket.
mcp_proxy: an MCP host spawns `manage.py mcp_proxy`, calls through it over stdio, and
the call is stored as a thread.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.mcp_servers import EVERYTHING, mcp_client
from tests.processes import ROOT, clean_env, create_token, daphne, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "mission_control.yml"
    servers = {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone=UTC"]},
        "everything": {"command": "node", "args": [str(EVERYTHING), "stdio"]},
    }
    path.write_text(json.dumps({"mcps": {"servers": servers}}))  # JSON is YAML
    return path


def _env(tmp_path: Path) -> tuple[dict[str, str], str]:
    """The server's environment, migrated, and an admin's API token in its database."""
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_CONFIG=str(_config(tmp_path)))
    migrate = [sys.executable, "manage.py", "migrate", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
    return env, create_token(env)


def _wait_connected(url: str, token: str, *servers: str, timeout: float = 60) -> None:
    async def poll() -> None:
        async with asyncio.timeout(timeout):
            while True:
                listed = httpx.get(f"{url}/api/mcps", headers=_auth(token), timeout=5).json()
                if {s["id"] for s in listed if s["status"] == "connected"} >= set(servers):
                    return
                await asyncio.sleep(0.2)

    asyncio.run(poll())


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _call_and_watch(
    url: str, port: int, mode: str, token: str
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Call time__get_current_time over /mcp while a WebSocket watches the time server."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/?token={token}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": "mcp:time"}))
        assert json.loads(await ws.recv())["type"] == "response"
        assert json.loads(await ws.recv())["payload"]["events"][0]["type"] == "mcp.state"
        async with mcp_client(token, mode, url) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"time__get_current_time", "everything__echo"} <= tools
            result = await client.call_tool("time__get_current_time", {"timezone": "Asia/Tokyo"})
        created = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["payload"]["events"][0]
        assert created["type"] == "thread.created", created
        for _ in range(50):  # the steps are stored a moment after the answer
            await ws.send(json.dumps({"type": "query", "channel": f"thread:{created['thread_id']}"}))
            state = json.loads(await ws.recv())["payload"]["events"][0]
            if len(state["timeline"]) == 2:
                break
            await asyncio.sleep(0.1)
        return result, created, state["timeline"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_an_agent_on_mcp_over_http_is_routed_recorded_and_streamed(tmp_path: Path, mode: str) -> None:
    env, token = _env(tmp_path)
    port = free_port()
    server = daphne(port, env, tmp_path / "daphne.log")
    try:
        server.wait_healthy()
        _wait_connected(server.url, token, "time", "everything")
        result, created, timeline = asyncio.run(_call_and_watch(server.url, port, mode, token))
        assert not result.is_error and result.structured_content["timezone"] == "Asia/Tokyo"
        # Filed under the server that answered, in the client's session.
        assert created["mcp_id"] == "time" and created["session_id"]
        assert result.meta is not None and result.meta["mc/thread_id"] == created["thread_id"]
        assert created["execution_context"]["via"] == "/mcp"
        assert created["execution_context"]["client"]["name"] == "mcp"
        assert [(s["step_type"], s["description"]) for s in timeline] == [
            ("tool_call", "time__get_current_time"),
            ("tool_result", "time__get_current_time: ok"),
        ]
        assert timeline[0]["details"]["arguments"] == {"timezone": "Asia/Tokyo"}
        rest = httpx.get(
            f"{server.url}/api/threads/{created['thread_id']}", headers=_auth(token), timeout=10
        ).json()
        assert rest["thread"]["mcp_id"] == "time" and rest["thread"]["status"] == "complete"
        assert [s["step_type"] for s in rest["timeline"]] == ["tool_call", "tool_result"]
        steps = httpx.get(
            f"{server.url}/api/threads/{created['thread_id']}/timeline", headers=_auth(token), timeout=10
        ).json()["results"]
        assert steps[1]["details"]["summary"].startswith("{") and steps[1]["duration_ms"] > 0
        listed = httpx.get(f"{server.url}/api/threads?mcp=time", headers=_auth(token), timeout=10).json()
        assert [t["id"] for t in listed["results"]] == [created["thread_id"]]
        session = httpx.get(
            f"{server.url}/api/sessions/{created['session_id']}", headers=_auth(token), timeout=10
        ).json()
        assert session["via"] == "/mcp" and [t["id"] for t in session["threads"]] == [created["thread_id"]]
        assert (
            httpx.get(f"{server.url}/api/threads/nope", headers=_auth(token), timeout=10).status_code == 404
        )
        assert httpx.get(f"{server.url}/mcp", timeout=10).status_code == 401
    finally:
        server.stop()


def test_a_host_spawning_mcp_proxy_calls_through_it_and_the_call_is_stored(tmp_path: Path) -> None:
    env, token = _env(tmp_path)
    params = StdioServerParameters(
        command=sys.executable, args=["manage.py", "mcp_proxy"], env={**env, "MC_TOKEN": token}, cwd=str(ROOT)
    )

    async def host() -> tuple[set[str], Any, list[float]]:
        progress: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        async with Client(stdio_client(params)) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            echo = await client.call_tool("everything__echo", {"message": "through the proxy"})
            await client.call_tool(
                "everything__trigger-long-running-operation",
                {"duration": 0.4, "steps": 2},
                progress_callback=on_progress,
            )
        return tools, echo, progress

    tools, echo, progress = asyncio.run(asyncio.wait_for(host(), timeout=120))
    assert {"time__get_current_time", "time__convert_time", "everything__echo"} <= tools
    assert echo.content[0].text == "Echo: through the proxy"
    assert progress == [1, 2]

    # The proxy stored the calls before it exited.
    db = sqlite3.connect(tmp_path / "data" / "missioncontrol.sqlite3")
    threads = db.execute(
        "select id, mcp_id, status, execution_context, session_id from threads_thread order by started_at"
    ).fetchall()
    # A thread per call, on the server called, ended with it; the connection is one session.
    assert [(mcp_id, status) for _, mcp_id, status, _, _ in threads] == [
        ("everything", "complete"),
        ("everything", "complete"),
    ]
    context = json.loads(threads[0][3])
    assert context["principal"] == "mc-test (token mc-test-token)" and context["via"] == "mcp_proxy"
    sessions = db.execute("select id, via, ended_at from threads_session").fetchall()
    assert len(sessions) == 1 and sessions[0][1] == "mcp_proxy" and sessions[0][2] is not None
    assert {session for *_, session in threads} == {sessions[0][0]}
    steps = db.execute(
        "select s.step_type, s.description from threads_executionstep s "
        "join threads_thread t on t.id = s.thread_id order by t.started_at, s.sequence"
    ).fetchall()
    assert steps == [
        ("tool_call", "everything__echo"),
        ("tool_result", "everything__echo: ok"),
        ("tool_call", "everything__trigger-long-running-operation"),
        ("tool_result", "everything__trigger-long-running-operation: ok"),
    ]

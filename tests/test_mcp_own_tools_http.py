"""An agent asks Mission Control about itself over /mcp, in a real daphne process.

The same session calls a routed tool (mcp-server-time) and the `missioncontrol__`
tools; a second session reads the first one's recorded thread with
`missioncontrol__get_thread`. The process was migrated as `make run` does, so the
system directives were loaded by post_migrate.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.processes import daphne, free_port
from tests.test_mcp_http import _auth, _env, _wait_connected

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]


def _mcp(url: str, token: str) -> Client:
    http = httpx.AsyncClient(headers=_auth(token), timeout=30)
    return Client(streamable_http_client(f"{url}/mcp", http_client=http))  # type: ignore[arg-type]


async def _ask(url: str, token: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    async with _mcp(url, token) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"time__get_current_time", "missioncontrol__get_thread", "missioncontrol__search_logs"} <= set(
            tools
        )
        assert tools["missioncontrol__list_servers"].annotations.read_only_hint is True  # type: ignore[union-attr]
        routed = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not routed.is_error
        servers = (await client.call_tool("missioncontrol__list_servers", {})).structured_content
        directives = (
            await client.call_tool("missioncontrol__list_directives", {"system": True})
        ).structured_content
    assert servers is not None and directives is not None
    for _ in range(100):  # the calls are stored a moment after their answers
        threads = httpx.get(
            f"{url}/api/threads", params={"mcp": "time"}, headers=_auth(token), timeout=10
        ).json()
        own = httpx.get(
            f"{url}/api/threads", params={"mcp": "mission-control"}, headers=_auth(token), timeout=10
        ).json()
        if threads["results"] and len(own["results"]) == 2:
            thread_url = f"{url}/api/threads/{threads['results'][0]['id']}"
            state = httpx.get(thread_url, headers=_auth(token), timeout=10).json()
            if len(state["timeline"]) == 2:
                break
        await asyncio.sleep(0.1)
    # Each call is a thread on the server that answered it: Mission Control's own tools on it.
    assert sorted(t["user_input"].split(",")[0] for t in own["results"]) == [
        "missioncontrol__list_directives",
        "missioncontrol__list_servers",
    ]
    async with _mcp(url, token) as client:
        found = await client.call_tool(
            "missioncontrol__get_thread", {"thread_id": threads["results"][0]["id"]}
        )
    assert found.structured_content is not None
    return servers, directives, found.structured_content


def test_an_agent_asks_mission_control_about_itself_over_http(tmp_path: Path) -> None:
    env, token = _env(tmp_path)
    port = free_port()
    server = daphne(port, env, tmp_path / "daphne.log")
    try:
        server.wait_healthy()
        _wait_connected(server.url, token, "time", "everything")
        servers, directives, thread = asyncio.run(_ask(server.url, token))
    finally:
        server.stop()
    by_id = {s["id"]: s for s in servers["servers"]}
    assert by_id["time"]["status"] == "connected" and by_id["time"]["tool_count"] == 2
    assert {d["name"] for d in directives["directives"]} >= {"heal_mcp_connection", "detect_anomalies"}
    assert len(directives["directives"]) == 8
    assert thread["thread"]["mcp_id"] == "time" and thread["thread"]["session_id"]
    assert [(s["step_type"], s["description"]) for s in thread["timeline"]] == [
        ("tool_call", "time__get_current_time"),
        ("tool_result", "time__get_current_time: ok"),
    ]

"""A tool call's caller is relayed the server's log notifications only when they can be
its own: the gateway holds one session per server for every caller, and a notification
names no call, so while two calls run on one server (two teams', say) neither caller is
sent the other's lines. They are stored as the server's logs as ever (admins read them).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from mcps.models import MCPServer
from tests.mcp_servers import register, until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def leaky() -> Any:
    await sync_to_async(register)(
        "leaky", transport="stdio", command=sys.executable, args=["-m", "tests.servers.leaky"]
    )
    gw = Gateway(Backoff(0.1, 0.2))
    await gw.start()
    await until(lambda: MCPServer.objects.get(id="leaky").status == "connected", what="leaky to connect")
    yield gw
    await gw.stop()


def call(gw: Gateway, tool: str, arguments: dict[str, Any], heard: list[str]) -> Any:
    async def relay(entry: dict[str, Any]) -> None:
        heard.append(entry["message"])

    return gw.handle("call_tool", {"mcp_id": "leaky", "tool": tool, "arguments": arguments}, None, relay)


async def test_a_lone_call_hears_its_own_log_lines(leaky: Gateway) -> None:
    heard: list[str] = []
    await call(leaky, "pause", {"seconds": 0.1}, heard)
    assert heard == ["pausing 0.1", "paused"]


async def test_a_caller_hears_nothing_of_another_call_running_on_the_server(leaky: Gateway) -> None:
    beta: list[str] = []
    waiting = asyncio.get_running_loop().create_task(call(leaky, "pause", {"seconds": 1.5}, beta))
    await asyncio.sleep(0.5)
    alpha: list[str] = []
    await call(leaky, "leak", {}, alpha)
    await waiting
    assert not any("notified" in line for line in beta)
    assert not any("pausing" in line or "paused" in line for line in alpha)


async def test_a_call_without_a_relay_is_not_heard_by_one_with_it(leaky: Gateway) -> None:
    beta: list[str] = []
    waiting = asyncio.get_running_loop().create_task(call(leaky, "pause", {"seconds": 1.5}, beta))
    await asyncio.sleep(0.5)
    # Another caller that asked for no relay (a WebSocket command, a directive's tool step).
    await leaky.handle("call_tool", {"mcp_id": "leaky", "tool": "leak", "arguments": {}})
    await waiting
    assert not any("notified" in line for line in beta)

"""A web process's view of the gateway's heartbeat (mcps/gateway/monitor.py)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from mcps.gateway import rpc
from mcps.gateway.monitor import GONE, NONE_RUNNING, Monitor
from mcps.models import MCPServer
from tests.mcp_servers import register

pytestmark = pytest.mark.django_db(transaction=True)


def _state(server_id: str) -> tuple[str, str]:
    server = MCPServer.objects.get(id=server_id)
    return server.status, server.last_error


async def _setup() -> None:
    for server_id in ("a", "b", "c"):
        await sync_to_async(register)(server_id, transport="stdio", command="x", status="connected")
    await sync_to_async(MCPServer.objects.filter(id="c").update)(status="disconnected", last_error="down")


def _beat(gateway: str, servers: dict[str, list[str]], **extra: object) -> dict[str, object]:
    return {"type": "gateway.heartbeat", "gateway": gateway, "servers": servers, **extra}


async def test_a_silent_gateways_servers_become_unknown_and_come_back_when_it_beats_again() -> None:
    await _setup()
    watch = Monitor()
    watch.heard(_beat("g1", {"a": ["connected", ""], "c": ["disconnected", "down"]}))
    await watch.check()
    assert await sync_to_async(_state)("a") == ("connected", "")

    watch.gateways["g1"].at -= rpc.DEAD_AFTER + 1  # silent for longer than DEAD_AFTER
    await watch.check()
    assert await sync_to_async(_state)("a") == ("unknown", GONE)
    assert await sync_to_async(_state)("b") == ("connected", "")  # not g1's
    assert await sync_to_async(_state)("c") == ("disconnected", "down")  # already not reachable

    watch.heard(_beat("g1", {"a": ["connected", ""]}))  # it was only silent a while
    await watch.check()
    assert await sync_to_async(_state)("a") == ("connected", "")


async def test_a_stopping_gateway_is_gone_at_once_unless_another_holds_on() -> None:
    await _setup()
    watch = Monitor()
    watch.heard(_beat("g1", {"a": ["connected", ""]}))
    watch.heard(_beat("g1", {}, stopping=True))
    await watch.check()
    assert await sync_to_async(_state)("a") == ("unknown", GONE)

    await sync_to_async(MCPServer.objects.filter(id="a").update)(status="connected", last_error="")
    watch.heard(_beat("g2", {"a": ["connected", ""]}))
    watch.heard(_beat("g3", {"b": ["connected", ""]}))
    watch.heard(_beat("g2", {}, stopping=True))
    await watch.check()
    # g3 lives: the servers are its to report (a replacement is taking over).
    assert await sync_to_async(_state)("a") == ("connected", "")


async def test_no_gateway_heard_at_all_marks_every_reachable_server_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _setup()
    watch = Monitor()
    await watch.check()
    assert await sync_to_async(_state)("a") == ("connected", "")  # not yet: it may just be starting
    watch.started -= rpc.DEAD_AFTER + 1
    await watch.check()
    assert await sync_to_async(_state)("a") == ("unknown", NONE_RUNNING)
    assert await sync_to_async(_state)("b") == ("unknown", NONE_RUNNING)
    assert await sync_to_async(_state)("c") == ("disconnected", "down")
    watch.heard(_beat("g1", {"a": ["connecting", ""]}))
    await watch.check()
    assert await sync_to_async(_state)("a") == ("connecting", "")


async def test_the_monitor_hears_a_real_gateways_beats_over_the_channel_layer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcps.gateway.service import Gateway

    monkeypatch.setattr(rpc, "BEAT_SECONDS", 0.1)
    gateway = Gateway()
    watch = Monitor()
    watch.start()
    try:
        await gateway.start()
        for _ in range(50):
            if gateway.id in watch.gateways:
                break
            await asyncio.sleep(0.05)
        assert gateway.id in watch.gateways
        await gateway.stop()
        await asyncio.sleep(0.3)
        assert gateway.id not in watch.gateways  # its stopping beat: gone without the wait
    finally:
        await watch.stop()

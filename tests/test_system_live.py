"""System scripts that speak to the world: alerts on `global`, and healing a real MCP server.

The healing tests hold mcp-server-time through a gateway whose own reconnect backoff
is long (a minute at least): a server killed under it stays down unless the healing
script brings it back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from automations import scripts
from automations.models import KnowledgeEntry
from logs.models import LogEntry
from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from mcps.models import MCPServer
from tests.conftest import Socket
from tests.mcp_servers import register, status, until
from tests.processes import is_descendant
from threads.models import Thread

pytestmark = pytest.mark.django_db(transaction=True)


async def run(name: str, **params: Any) -> dict[str, Any]:
    script = scripts.get(name)
    assert script is not None
    return await sync_to_async(script.run)(params)


def _ago(**delta: float) -> Any:
    return timezone.now() - timedelta(**delta)


async def test_a_stalled_thread_is_alerted_once_on_global_and_its_own_channels() -> None:
    await sync_to_async(MCPServer.objects.create)(id="git", name="git")
    await sync_to_async(Thread.objects.create)(id="T-stuck", mcp_id="git", started_at=_ago(minutes=20))
    async with Socket() as ws:
        await ws.subscribe("global")
        await run("mark_stalled_threads", timeout_seconds=300)
        [alert] = await ws.events("global")
        assert (alert["type"], alert["severity"]) == ("thread.stalled", "warn")
        assert alert["details"]["thread_id"] == "T-stuck" and alert["details"]["mcp_id"] == "git"
        assert 1190 < alert["details"]["idle_seconds"] < 1230
        await run("mark_stalled_threads", timeout_seconds=300)
        assert await ws.nothing()


async def test_each_new_anomaly_is_published_as_anomaly_detected() -> None:
    rows = [
        Thread(id=f"n{i}", status="complete", started_at=_ago(hours=2, seconds=1), ended_at=_ago(hours=2))
        for i in range(30)
    ]
    rows.append(Thread(id="slow", status="complete", started_at=_ago(minutes=3), ended_at=_ago(minutes=1)))
    await sync_to_async(Thread.objects.bulk_create)(rows)
    async with Socket() as ws:
        await ws.subscribe("global")
        result = await run("detect_slow_thread_anomalies", lookback_minutes=10)
        [alert] = await ws.events("global")
        assert alert["type"] == "anomaly.detected" and alert["message"] == "Slow thread slow"
        assert alert["details"]["kind"] == "slow_thread" and alert["details"]["thread_id"] == "slow"
        assert alert["details"]["knowledge"] == "anomaly-slow-thread-slow"
        assert result["anomalies"][0]["duration_ms"] == pytest.approx(120_000, abs=1)
        await run(
            "detect_slow_thread_anomalies", lookback_minutes=10
        )  # the same anomaly: stored, not re-sent
        assert await ws.nothing()
    assert await KnowledgeEntry.objects.filter(category="alert").acount() == 1


# -- healing ---------------------------------------------------------------------------


@pytest.fixture
async def slow_healing_gateway() -> AsyncIterator[Gateway]:
    await sync_to_async(register)(
        "time",
        transport="stdio",
        command=sys.executable,
        args=["-m", "mcp_server_time", "--local-timezone=UTC"],
    )
    await sync_to_async(register)(
        "broken", transport="stdio", command=sys.executable, args=["-c", "import sys; sys.exit(3)"]
    )
    gw = Gateway(Backoff(120, 240))  # its own retry waits a minute at least
    await gw.start()
    try:
        await until(lambda: status("time") == "connected", what="time to connect")
        yield gw
    finally:
        await gw.stop()


async def test_healing_brings_a_killed_server_back_and_logs_the_recovery(
    slow_healing_gateway: Gateway,
) -> None:
    assert (await run("check_mcp_status", mcp_id="time"))["status"] == "connected"
    pids = subprocess.run(["pgrep", "-f", "mcp_server_time"], capture_output=True, text=True).stdout.split()
    mine = [int(p) for p in pids if is_descendant(int(p), os.getpid())]
    assert mine, "the time server is not a child of this test"
    for pid in mine:
        os.kill(pid, signal.SIGKILL)
    await until(lambda: status("time") != "connected", timeout=10, what="the server to be seen down")

    check = await run("check_mcp_status", mcp_id="time")
    assert (check["status"], check["ok"]) == ("disconnected", False)
    started = time.monotonic()
    healed = await run("reconnect_mcp", mcp_id="time", max_attempts=3, backoff_seconds=5)
    assert healed["success"] is True, healed["error"]
    assert time.monotonic() - started < 50  # before the gateway's own retry
    assert await sync_to_async(status)("time") == "connected"
    assert (await run("check_mcp_status", mcp_id="time"))["status"] == "connected"

    logged = await run("log_recovery", mcp_id="time", message="MCP reconnected successfully", attempts=1)
    entry = await LogEntry.objects.aget(id=logged["logged"])
    assert (entry.level, entry.service, entry.mcp_id) == ("INFO", "mission-control", "time")
    assert entry.message == "time: MCP reconnected successfully" and entry.context["recovered"] is True


async def test_a_server_that_cannot_be_healed_is_logged_and_escalated(slow_healing_gateway: Gateway) -> None:
    assert (await run("check_mcp_status", mcp_id="broken"))["status"] == "disconnected"
    failed = await run("reconnect_mcp", mcp_id="broken", max_attempts=2, backoff_seconds=0.3)
    assert (failed["success"], failed["attempts"]) == (False, 2) and failed["error"]
    async with Socket() as ws:
        await ws.subscribe("global")
        result = await run(
            "log_failure",
            mcp_id="broken",
            message="Failed to reconnect MCP after 2 attempts",
            error=failed["error"],
        )
        events = await ws.events("global")
    [alert] = [e for e in events if e["type"] == "mcp.escalated"]
    assert alert["severity"] == "critical" and alert["details"]["mcp_id"] == "broken"
    entry = await LogEntry.objects.aget(id=result["logged"])
    assert entry.level == "ERROR" and entry.message.startswith(
        "broken: Failed to reconnect MCP after 2 attempts ("
    )
    assert entry.context["escalated"] is True


async def test_an_unmanaged_or_unknown_server_is_said_so() -> None:
    await sync_to_async(MCPServer.objects.create)(id="pushes-only", name="p")
    assert (await run("check_mcp_status", mcp_id="pushes-only"))["status"] == "unmanaged"
    with pytest.raises(ValueError, match="no MCP server 'nope'"):
        await run("check_mcp_status", mcp_id="nope")

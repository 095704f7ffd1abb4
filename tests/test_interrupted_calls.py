"""A call interrupted mid-flight tells the truth: it may or may not have run.

A server killed while it runs a call, a gateway gone silent while it holds one: the
caller gets 502 with `"outcome": "unknown"` (REST), an error frame saying so (WebSocket)
or a JSON-RPC error whose data says so (/mcp), never a 400 naming its arguments and
never a 503 (which means "not sent, retry"). The recorded thread says the same.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from mcps.gateway import rpc
from mcps.gateway.service import Gateway
from tests.mcp_servers import EVERYTHING, api, mcp_client, status, until
from tests.processes import is_descendant
from threads.models import ExecutionStep, Thread

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]

LONG = "trigger-long-running-operation"
LONG_ARGS = {"duration": 30, "steps": 30}


def _kill_everything() -> None:
    pids = subprocess.run(["pgrep", "-f", str(EVERYTHING)], capture_output=True, text=True).stdout.split()
    mine = [int(p) for p in pids if is_descendant(int(p), os.getpid())]
    assert mine, "the everything server is not a child of this test"
    for pid in mine:
        os.kill(pid, signal.SIGKILL)


async def _kill_when_running(gateway: Gateway) -> None:
    """Kill server-everything once the gateway has a call in flight on it."""
    await until(lambda: bool(gateway._beating), timeout=10, what="the call to reach the gateway")
    await asyncio.sleep(0.5)  # forwarded: the server is running it
    _kill_everything()


async def _result_step(thread_id: str) -> ExecutionStep:
    from mcps.endpoint.http import mcp_endpoint

    await mcp_endpoint.batcher.flush()
    await until(
        lambda: ExecutionStep.objects.filter(thread_id=thread_id, step_type="tool_result").exists(),
        timeout=10,
        what="the recorded call",
    )
    return await ExecutionStep.objects.aget(thread_id=thread_id, step_type="tool_result")


async def test_a_server_killed_mid_call_answers_502_outcome_unknown_on_rest(gateway: Gateway) -> None:
    call = asyncio.ensure_future(
        api("POST", f"/api/mcps/everything/tools/{LONG}/call", {"arguments": LONG_ARGS})
    )
    await _kill_when_running(gateway)
    response = await asyncio.wait_for(call, 20)
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["outcome"] == "unknown"
    assert body["error"]["field"] != "arguments"
    assert "may or may not have run" in body["error"]["reason"]
    step = await _result_step(body["thread_id"])
    assert step.status == "error" and step.details["outcome"] == "unknown"
    assert step.description.endswith("outcome unknown")
    thread = await Thread.objects.aget(id=body["thread_id"])
    assert thread.status == "error"
    # The server comes back; a call to a server not connected was never sent: 503, no outcome.
    await until(lambda: status("everything") == "connected", what="the reconnect")


async def test_a_server_not_connected_answers_503_without_an_outcome(gateway: Gateway) -> None:
    _kill_everything()
    await until(lambda: status("everything") != "connected", timeout=10, what="the loss to be seen")
    gateway.connections["everything"].stop()  # no reconnect: the server stays away
    await until(lambda: gateway.connections["everything"].client is None, timeout=10, what="no session")
    response = await api("POST", "/api/mcps/everything/tools/echo/call", {"arguments": {"message": "x"}})
    assert response.status_code == 503, response.text
    assert "outcome" not in response.json() and response.headers["Retry-After"] == "5"


async def test_a_server_killed_mid_call_answers_an_unknown_outcome_on_the_websocket(gateway: Gateway) -> None:
    from tests.conftest import Socket

    async with Socket() as ws:
        payload = {"command": "call_tool", "tool": LONG, "arguments": LONG_ARGS}
        await ws.send(type="command", channel="mcp:everything", payload=payload, request_id="long")
        await _kill_when_running(gateway)
        frame: dict[str, Any] = {"type": "event"}
        while frame["type"] == "event":  # progress frames first
            frame = await ws.recv(timeout=20)
    assert frame["type"] == "error" and frame["request_id"] == "long", frame
    assert frame["payload"]["status"] == 502 and frame["payload"]["outcome"] == "unknown"
    step = await _result_step(frame["payload"]["thread_id"])
    assert step.status == "error" and step.details["outcome"] == "unknown"


async def test_a_server_killed_mid_call_is_a_json_rpc_error_saying_outcome_unknown_on_mcp(
    gateway: Gateway,
) -> None:
    async with mcp_client() as client:
        call = asyncio.ensure_future(client.call_tool(f"everything__{LONG}", LONG_ARGS))
        await _kill_when_running(gateway)
        with pytest.raises(MCPError) as raised:
            await asyncio.wait_for(call, 20)
    error = raised.value.error
    assert error.code == -32603 and error.data["outcome"] == "unknown" and error.data["status"] == 502
    step = await _result_step(error.data["mc/thread_id"])
    assert step.status == "error" and step.details["outcome"] == "unknown"


async def test_a_gateway_that_stops_beating_fails_its_calls_within_seconds(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's process is gone (its loops and replies stop): the caller hears of it
    within DEAD_AFTER, not at the call's timeout."""
    monkeypatch.setattr(rpc, "DEAD_AFTER", 1.5)
    call = asyncio.ensure_future(
        api("POST", f"/api/mcps/everything/tools/{LONG}/call", {"arguments": LONG_ARGS, "timeout": 60})
    )
    await until(lambda: bool(gateway._beating), timeout=10, what="the call to reach the gateway")
    # As if the process died: no more beats, no progress, no answer.
    for task in gateway._loops:
        task.cancel()
    for task in list(gateway._requests):
        task.cancel()
    started = asyncio.get_running_loop().time()
    response = await asyncio.wait_for(call, 20)
    waited = asyncio.get_running_loop().time() - started
    assert response.status_code == 502 and response.json()["outcome"] == "unknown", response.text
    assert "no heartbeat" in response.json()["error"]["reason"]
    assert waited < 4, waited
    step = await _result_step(response.json()["thread_id"])
    assert step.status == "error" and step.details["outcome"] == "unknown"


async def test_a_call_that_times_out_is_a_504_whose_outcome_is_unknown_never_a_400(gateway: Gateway) -> None:
    response = await api(
        "POST",
        f"/api/mcps/everything/tools/{LONG}/call",
        {"arguments": {"duration": 5, "steps": 5}, "timeout": 1},
    )
    assert response.status_code == 504, response.text
    body = response.json()
    assert body["outcome"] == "unknown" and body["error"]["field"] == "timeout"
    step = await _result_step(body["thread_id"])
    assert step.status == "error" and step.details["outcome"] == "unknown"


async def test_a_fault_of_the_gateway_itself_is_a_502_that_quotes_nothing_of_it(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("token=hunter2 at https://user:pw@example.invalid")

    monkeypatch.setattr(gateway, "handle", broken)
    response = await api("POST", "/api/mcps/everything/tools/echo/call", {"arguments": {"message": "x"}})
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["outcome"] == "unknown"
    assert body["error"]["reason"] == "the gateway failed (RuntimeError); its log has the details"
    assert "hunter2" not in response.text

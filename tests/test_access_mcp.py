"""Roles on the commands that reach real MCP servers: /mcp, the REST tool call, reconnect.

A gateway holds mcp-server-time, mcp-server-git and server-everything (tests/mcp_servers.py);
/mcp is reached through the ASGI application by an `mcp` SDK client carrying a token.
"""

from __future__ import annotations

import asyncio
import shutil

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from mcp.shared.exceptions import MCPError

from audit.models import AccessEvent
from mcps.gateway.service import Gateway
from tests.conftest import api_token, make_user
from tests.mcp_servers import api, mcp_client
from threads.models import Thread

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]


def token_of(name: str, role: str) -> str:
    return api_token(make_user(name, role, "alpha"), "alpha")


def events_of(name: str) -> list[tuple[str, str, str]]:
    rows = AccessEvent.objects.filter(actor_name=name).order_by("timestamp", "id")
    return [(e.action, e.target, e.outcome) for e in rows]


async def test_mcp_without_a_valid_token_answers_401_with_a_bearer_challenge() -> None:
    from missioncontrol.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for headers in ({}, {"Authorization": "Bearer mct_revoked-or-never-issued"}):
            response = await http.post(
                "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers
            )
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["error"]["field"] == "Authorization"


async def test_a_viewers_token_lists_tools_but_may_not_call_them(gateway: Gateway) -> None:
    token = await sync_to_async(token_of)("victor", "viewer")
    async with mcp_client(token) as client:
        assert "time__get_current_time" in {t.name for t in (await client.list_tools()).tools}
        with pytest.raises(MCPError, match="Permission denied: victor .* may list tools but not call them"):
            await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert await sync_to_async(events_of)("victor") == [
        ("token.used", (await sync_to_async(lambda: f"api_token:{_token_id('victor')}")()), "success"),
        ("tool.call", "time/get_current_time", "denied"),
    ]
    assert not await Thread.objects.filter(mcp_id="mission-control").aexists()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_operators_calls_go_through_into_its_teams_thread_and_the_audit(
    gateway: Gateway, mode: str
) -> None:
    token = await sync_to_async(token_of)("olga", "operator")
    async with mcp_client(token, mode) as client:
        result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert not result.is_error
    thread = await Thread.objects.select_related("team", "session").aget(mcp_id="time")
    assert thread.team.slug == "alpha"
    assert thread.execution_context["principal"] == "olga (token token-olga-alpha)"
    assert thread.session is not None and thread.session.team_id == thread.team_id
    assert thread.session.principal == "olga (token token-olga-alpha)" and thread.session.via == "/mcp"
    assert ("tool.call", "time/get_current_time", "success") in await sync_to_async(events_of)("olga")
    assert await AccessEvent.objects.filter(action="tool.call", actor__username="olga").aexists()


async def test_the_rest_tool_call_and_reconnect_need_an_operator_and_are_audited(gateway: Gateway) -> None:
    viewer = await sync_to_async(token_of)("victor", "viewer")
    operator = await sync_to_async(token_of)("olga", "operator")
    call = "/api/mcps/time/tools/get_current_time/call"
    assert (await api("POST", call, {"arguments": {"timezone": "UTC"}}, token=viewer)).status_code == 403
    assert (await api("POST", "/api/mcps/time/reconnect", token=viewer)).status_code == 403
    answer = await api("POST", call, {"arguments": {"timezone": "UTC"}}, token=operator)
    assert answer.status_code == 200 and answer.json()["result"]["structuredContent"]["timezone"] == "UTC"
    assert (await api("POST", "/api/mcps/time/reconnect", token=operator)).status_code == 202
    audited = [e for e in await sync_to_async(events_of)("olga") if e[0] != "token.used"]
    assert audited == [
        ("tool.call", "time/get_current_time", "success"),
        ("server.reconnect", "mcp:time", "success"),
    ]


async def test_a_revoked_token_is_refused_on_mcp_once_its_check_expires() -> None:
    from mcps.endpoint import http as endpoint
    from missioncontrol.asgi import application

    token = await sync_to_async(token_of)("olga", "operator")
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.post("/mcp", json=ping, headers=headers)).status_code != 401
        await sync_to_async(lambda: User.objects.get(username="olga").api_tokens.get().revoke())()
        assert (await http.post("/mcp", json=ping, headers=headers)).status_code != 401  # still trusted
        endpoint.mcp_endpoint.principals.forget()  # as if its ttl had passed
        assert (await http.post("/mcp", json=ping, headers=headers)).status_code == 401


MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


@pytest.mark.parametrize(("role", "calls"), [("viewer", False), ("operator", True), ("admin", True)])
async def test_each_role_on_mcp_own_tools(role: str, calls: bool) -> None:
    # Mission Control's own tools answer in this process (no gateway): read-only ones and
    # run_directive alike need the operator role; a viewer is told why, and audited.
    token = await sync_to_async(token_of)(f"user-{role}", role)
    async with mcp_client(token) as client:
        if calls:
            result = await client.call_tool("missioncontrol__list_servers", {})
            assert not result.is_error
        else:
            for tool in ("missioncontrol__list_servers", "missioncontrol__run_directive"):
                with pytest.raises(MCPError, match="may list tools but not call them"):
                    await client.call_tool(tool, {"directive": "x"})
    denied = await sync_to_async(lambda: [e for e in events_of(f"user-{role}") if e[2] == "denied"])()
    assert denied == (
        []
        if calls
        else [
            ("tool.call", "missioncontrol/list_servers", "denied"),
            ("tool.call", "missioncontrol/run_directive", "denied"),
        ]
    )


async def test_mcp_refuses_a_user_without_a_role_with_403_and_a_json_rpc_error() -> None:
    from missioncontrol.asgi import application

    token = await sync_to_async(token_of)("nobody", None)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answer = await http.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == -32600 and "has no role (viewer, operator or admin)" in error["message"]
    with pytest.raises(BaseException) as refused:  # the SDK raises it from its handshake
        async with mcp_client(token) as client:
            await client.call_tool("missioncontrol__list_servers", {})
    assert "has no role" in repr(refused.value) or "Forbidden" in repr(refused.value)
    with pytest.raises(CommandError, match="has no role"):
        await sync_to_async(call_command)("mcp_proxy", "--token", token)


@pytest.mark.parametrize(("role", "calls"), [("viewer", False), ("operator", True), ("admin", True)])
async def test_each_role_on_websocket_tool_calls_to_a_real_server(
    gateway: Gateway, role: str, calls: bool
) -> None:
    from tests.conftest import Socket

    user = await sync_to_async(make_user)(f"user-{role}", role, "alpha")
    call = {"command": "call_tool", "tool": "get_current_time", "arguments": {"timezone": "UTC"}}
    async with Socket(user=user) as ws:
        await ws.send(type="command", channel="mcp:time", payload=call, request_id="c")
        answer = await ws.recv(timeout=30)
        if calls:
            assert answer["type"] == "response", answer
            assert "UTC" in answer["payload"]["result"]["content"][0]["text"]
        else:
            assert answer["type"] == "error" and answer["payload"]["status"] == 403, answer
        await ws.send(type="command", channel="mcp:time", payload={"command": "list_tools"}, request_id="l")
        listed = await ws.recv(timeout=30)  # every role may list
        assert listed["type"] == "response" and "get_current_time" in {
            t["name"] for t in listed["payload"]["tools"]
        }
    outcome = "success" if calls else "denied"
    for _ in range(50):  # the socket writes a call's audit just after its answer
        if ("tool.call", "time/get_current_time", outcome) in await sync_to_async(events_of)(f"user-{role}"):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"no {outcome} tool.call audited for {role}")


def test_mcp_proxy_wants_a_valid_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MC_TOKEN", raising=False)
    with pytest.raises(CommandError, match="--token or the MC_TOKEN"):
        call_command("mcp_proxy")
    with pytest.raises(CommandError, match="not valid"):
        call_command("mcp_proxy", "--token", "mct_nope")


def _token_id(name: str) -> int:
    return User.objects.get(username=name).api_tokens.get().pk

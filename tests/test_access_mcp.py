"""Roles on the commands that reach real MCP servers: /mcp, the REST tool call, reconnect.

A gateway holds mcp-server-time, mcp-server-git and server-everything (tests/mcp_servers.py);
/mcp is reached through the ASGI application by an `mcp` SDK client carrying a token.
"""

from __future__ import annotations

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
    thread = await Thread.objects.select_related("team").aget(mcp_id="mission-control")
    assert thread.team.slug == "alpha"
    assert thread.execution_context["principal"] == "olga (token token-olga-alpha)"
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


async def test_a_revoked_token_is_refused_on_mcp_once_its_check_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
        monkeypatch.setattr(endpoint, "PRINCIPAL_TTL", 0.0)
        endpoint.mcp_endpoint._principals.clear()
        assert (await http.post("/mcp", json=ping, headers=headers)).status_code == 401


def test_mcp_proxy_wants_a_valid_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MC_TOKEN", raising=False)
    with pytest.raises(CommandError, match="--token or the MC_TOKEN"):
        call_command("mcp_proxy")
    with pytest.raises(CommandError, match="not valid"):
        call_command("mcp_proxy", "--token", "mct_nope")


def _token_id(name: str) -> int:
    return User.objects.get(username=name).api_tokens.get().pk

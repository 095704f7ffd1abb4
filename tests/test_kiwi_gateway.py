"""Per-server default arguments on routed calls, against a real Kiwi-shaped stdio server.

tests/servers/kiwi_echo.py answers each call with the arguments exactly as they arrived,
so these tests see what the gateway forwarded: the server's default (`project_path`)
when the caller gave none, the caller's value when it did, and nothing for a tool
whose input schema has no such property.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcps.gateway.service import Gateway
from mcps.models import with_defaults
from tests.mcp_servers import api, mcp_client

pytestmark = pytest.mark.django_db(transaction=True)

EXECUTE = {"action": "run", "item_type": "directive", "item_id": "deploy"}


def forwarded(answer: dict[str, Any]) -> dict[str, Any]:
    """The arguments the Kiwi server received, from a REST call's answer."""
    return json.loads(answer["result"]["content"][0]["text"])["arguments"]


async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = await api("POST", f"/api/mcps/kiwi/tools/{tool}/call", {"arguments": arguments})
    assert response.status_code == 200, response.text
    return forwarded(response.json())


async def test_rest_calls_get_the_servers_defaults_under_their_own(kiwi_gateway: Gateway) -> None:
    # execute requires project_path: the default fills it, and execute's own default adds parameters.
    assert await call("execute", EXECUTE) == {
        **EXECUTE,
        "project_path": "/srv/project",
        "parameters": {"dry_run": True},
    }
    # The caller's values win over both.
    mine = {**EXECUTE, "project_path": "/home/me/app", "parameters": {"dry_run": False}}
    assert await call("execute", mine) == mine
    # load has project_path but no per-tool default: only the "*" one.
    assert await call("load", {"item_type": "tool", "item_id": "lint"}) == {
        "item_type": "tool",
        "item_id": "lint",
        "project_path": "/srv/project",
    }


async def test_a_tool_without_the_property_does_not_receive_the_default(kiwi_gateway: Gateway) -> None:
    assert await call("help", {"topic": "directives"}) == {"topic": "directives"}
    assert await call("help", {}) == {}


async def test_mcp_endpoint_lists_defaulted_arguments_as_optional_and_fills_them(
    kiwi_gateway: Gateway,
) -> None:
    async with mcp_client() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "project_path" not in tools["kiwi__execute"].input_schema["required"]
        assert "project_path" in tools["kiwi__execute"].input_schema["properties"]
        assert tools["kiwi__help"].input_schema["required"] == []
        result = await client.call_tool("kiwi__execute", EXECUTE)
        assert not result.is_error, result.content
        received = json.loads(result.content[0].text)["arguments"]
        assert received["project_path"] == "/srv/project"
        theirs = await client.call_tool(
            "kiwi__sign", {"item_type": "directive", "item_id": "d", "project_path": "/x"}
        )
        assert json.loads(theirs.content[0].text)["arguments"]["project_path"] == "/x"
        helped = await client.call_tool("kiwi__help", {})
        assert json.loads(helped.content[0].text)["arguments"] == {}


async def test_defaults_changed_through_rest_apply_to_the_next_call(kiwi_gateway: Gateway) -> None:
    spec = kiwi_gateway.connections["kiwi"].spec
    entry = {"id": "kiwi", "command": spec.command, "args": list(spec.args), "cwd": spec.cwd}
    response = await api(
        "POST", "/api/mcps", {**entry, "default_arguments": {"sign": {"project_path": "/signed"}}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["default_arguments"] == {"sign": {"project_path": "/signed"}}
    await kiwi_gateway.discover()  # what the POST's notice asks the gateway to do
    assert await call("sign", {"item_type": "tool", "item_id": "t"}) == {
        "item_type": "tool",
        "item_id": "t",
        "project_path": "/signed",
    }
    # No default for load any more: its schema's required project_path is missing.
    response = await api(
        "POST", "/api/mcps/kiwi/tools/load/call", {"arguments": {"item_type": "tool", "item_id": "t"}}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "arguments"


async def test_rest_rejects_malformed_defaults(kiwi_gateway: Gateway) -> None:
    response = await api(
        "POST", "/api/mcps", {"id": "k2", "command": "kiwi", "default_arguments": {"*": "/p"}}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "default_arguments"


def test_with_defaults_keeps_only_declared_properties_and_the_callers_values() -> None:
    schema = {"type": "object", "properties": {"a": {}, "b": {}}}
    defaults = {"*": {"a": 1, "z": 9}, "t": {"b": 2}}
    assert with_defaults(defaults, "t", schema, {"b": 3}) == {"a": 1, "b": 3}
    assert with_defaults(defaults, "other", schema, {}) == {"a": 1}
    assert with_defaults(defaults, "t", {"type": "object"}, {"x": 1}) == {"x": 1}

"""Testing a server's connection before saving it: the gateway connects once, lists what
the server offers, and says in words why it could not."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from mcps.gateway import rpc
from mcps.gateway.service import Gateway
from tests.processes import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def spec(**fields: Any) -> dict[str, Any]:
    base = {"transport": "stdio", "command": "", "args": [], "env": {}, "cwd": "", "url": "", "headers": {}}
    return {**base, **fields}


async def connect(**fields: Any) -> dict[str, Any]:
    return await Gateway().handle("test_connection", {"spec": spec(**fields), "timeout": 20})


async def test_a_working_server_lists_its_tools() -> None:
    answer = await connect(command=sys.executable, args=["-m", "mcp_server_time"])
    assert answer["ok"] is True, answer
    assert sorted(t["name"] for t in answer["tools"]) == ["convert_time", "get_current_time"]
    assert answer["info"]["server_info"]["name"] == "mcp-time"
    assert answer["latency_ms"] > 0


async def test_a_missing_command_is_named() -> None:
    answer = await connect(command="no-such-mcp-server")
    assert answer["ok"] is False
    assert answer["error"] == (
        "The command 'no-such-mcp-server' was not found: check its path, or that it is on PATH."
    )


async def test_a_server_that_exits_shows_its_stderr_with_secrets_masked() -> None:
    script = "import os, sys\nprint('missing API key, got ' + os.environ['TOKEN'], file=sys.stderr); exit(3)"
    answer = await connect(command=sys.executable, args=["-c", script], env={"TOKEN": "tok-very-secret"})
    assert answer["ok"] is False
    assert answer["error"] == "The server process exited before it answered: see what it wrote on stderr."
    assert answer["stderr"] == "missing API key, got ***"


async def test_an_url_where_nothing_listens_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    answer = await connect(transport="streamable_http", url=url)
    assert answer["ok"] is False
    assert answer["error"] == f"Nothing answered at {url}: is the server running, and is the URL right?"


async def test_a_broken_request_is_refused() -> None:
    with pytest.raises(rpc.GatewayError) as refused:
        await Gateway().handle("test_connection", {"spec": {"transport": "stdio"}})
    assert refused.value.status == 400 and refused.value.field == "spec"

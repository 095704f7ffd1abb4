"""A server's secrets never travel in the text of its errors or its log lines.

A server that refuses its credentials (401) over SSE makes the HTTP client's error quote
the URL it asked, query token and userinfo included; a careless server prints its
environment on stderr or in its log notifications. That text becomes the server's
`last_error`, its status events on the live channels, its `gateway` log entries, its
health checks, the reason a tool call failed and its stored log lines: each shows `***`
where a secret of the server's own configuration (its URL's userinfo and query values,
header and env values, secret-named arguments) stood.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from logs.models import LogEntry
from mcps.gateway.connection import Backoff, Spec
from mcps.gateway.service import Gateway
from mcps.models import HealthCheck, MCPServer
from tests.mcp_servers import register, until

pytestmark = pytest.mark.django_db(transaction=True)

SECRETS = ("url-pass-4711", "query-secret-4712", "header-secret-4713", "env-secret-4714", "arg-secret-4715")


class Refusing(BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        body = b'{"error": "bad credentials"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def everything_said(server_id: str) -> str:
    server = MCPServer.objects.get(id=server_id)
    logs = LogEntry.objects.filter(mcp_id=server_id)
    checks = HealthCheck.objects.filter(server_id=server_id)
    return "\n".join(
        [
            server.last_error,
            *(f"{log.message} {log.context}" for log in logs),
            *(check.error for check in checks),
        ]
    )


@pytest.mark.parametrize("transport", ["sse", "streamable_http"])
async def test_a_refused_http_servers_errors_hold_none_of_its_secrets(
    refusing_port: int, transport: str
) -> None:
    await sync_to_async(register)(
        "locked",
        transport=transport,
        url=f"http://robot:url-pass-4711@127.0.0.1:{refusing_port}/mcp?api_key=query-secret-4712",
        headers={"Authorization": "Bearer header-secret-4713"},
    )
    gw = Gateway(Backoff(0.1, 0.2))
    await gw.start()
    try:
        await until(lambda: MCPServer.objects.get(id="locked").last_error != "", what="the refusal")
        connection = gw.connections["locked"]
        health = await gw.check_health("locked")
        call = None
        try:
            await connection.call_tool("anything", {}, 1.0)
        except Exception as exc:  # noqa: BLE001 - the reason a caller is given
            call = str(exc)
        await gw.logs.flush()
    finally:
        await gw.stop()
    said = await sync_to_async(everything_said)("locked")
    shown = "\n".join([said, connection.error, str(health), str(call)])
    assert "error" in shown.lower()  # it still says something went wrong
    if transport == "sse":  # its client quotes the URL: masked
        assert f"for url 'http://***@127.0.0.1:{refusing_port}/mcp?api_key=***'" in shown
    for secret in SECRETS:
        assert secret not in shown


async def test_a_stdio_server_saying_its_secrets_shows_them_masked() -> None:
    await sync_to_async(register)(
        "leaky",
        transport="stdio",
        command=sys.executable,
        args=["-m", "tests.servers.leaky", "--token", "arg-secret-4715"],
        env={"API_TOKEN": "env-secret-4714"},
    )
    gw = Gateway(Backoff(0.1, 0.2))
    await gw.start()
    try:
        await until(lambda: MCPServer.objects.get(id="leaky").status == "connected", what="leaky to connect")
        await gw.connections["leaky"].call_tool("leak", {}, 10.0)

        def both_said() -> bool:
            logs = LogEntry.objects.filter(mcp_id="leaky")
            return (
                logs.filter(message__startswith="ERROR starting").exists()
                and logs.filter(message__startswith="notified").exists()
            )

        for _ in range(100):
            await gw.logs.flush()
            if await sync_to_async(both_said)():
                break
            await asyncio.sleep(0.1)
    finally:
        await gw.stop()
    said = await sync_to_async(everything_said)("leaky")
    assert "ERROR starting with *** and ***" in said
    assert "notified *** and ***" in said
    for secret in SECRETS:
        assert secret not in said


def test_a_specs_scrub_masks_each_of_its_secrets_and_leaves_the_rest() -> None:
    spec = Spec.of(
        "s",
        {
            "transport": "streamable_http",
            "command": "",
            "args": ["--api-key=arg-secret-4715", "--verbose", "on"],
            "env": {"SHORT": "1", "TOKEN": "env-secret-4714"},
            "cwd": "",
            "url": "https://robot:url-pass-4711@example.test/mcp?api_key=query-secret-4712&mode=fast",
            "headers": {"X-Key": "header-secret-4713"},
        },
    )
    text = (
        "GET https://robot:url-pass-4711@example.test/mcp?api_key=query-secret-4712&mode=fast failed; "
        "env-secret-4714 header-secret-4713 arg-secret-4715 mode 1 on"
    )
    assert spec.scrub(text) == (
        "GET https://***@example.test/mcp?api_key=***&mode=*** failed; *** *** *** mode 1 on"
    )

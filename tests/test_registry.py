"""Servers from an MCP Registry API, served here by a small local registry."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from asgiref.sync import sync_to_async

from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from mcps.models import MCPServer
from mcps.registry import RegistryError, entry_for, sync
from tests.mcp_servers import api, everything_over_http, status, until
from tests.processes import free_port

OFFICIAL = "io.modelcontextprotocol.registry/official"


def _item(server: dict[str, Any], latest: bool = True) -> dict[str, Any]:
    return {"server": {"version": "1.0.0", **server}, "_meta": {OFFICIAL: {"isLatest": latest}}}


def catalog(remote_url: str) -> list[dict[str, Any]]:
    return [
        _item({"name": "io.github.acme/everything", "title": "Everything", "version": "0.9.0"}, latest=False),
        _item(
            {
                "name": "io.github.acme/everything",
                "title": "Everything",
                "remotes": [{"type": "streamable-http", "url": remote_url}],
            }
        ),
        _item(
            {
                "name": "io.github.acme/time",
                "packages": [
                    {
                        "registryType": "pypi",
                        "identifier": "mcp-server-time",
                        "version": "2026.10.19",
                        "transport": {"type": "stdio"},
                        "packageArguments": [{"type": "named", "name": "--local-timezone", "value": "UTC"}],
                        "environmentVariables": [{"name": "TZ_DEBUG", "default": "0"}],
                    }
                ],
            }
        ),
        _item(
            {
                "name": "io.github.acme/legacy",
                "remotes": [
                    {
                        "type": "sse",
                        "url": "https://legacy.example/sse",
                        "headers": [{"name": "X-Team", "value": "blue"}],
                    }
                ],
            }
        ),
        _item(
            {
                "name": "io.github.acme/files",
                "packages": [
                    {
                        "registryType": "npm",
                        "identifier": "@modelcontextprotocol/server-filesystem",
                        "version": "1.0.2",
                        "transport": {"type": "stdio"},
                        "packageArguments": [
                            {"type": "positional", "valueHint": "directory", "isRequired": True}
                        ],
                    }
                ],
            }
        ),
        _item(
            {
                "name": "io.github.acme/weather",
                "remotes": [
                    {
                        "type": "streamable-http",
                        "url": "https://weather.example/mcp",
                        "headers": [{"name": "Authorization", "isRequired": True, "isSecret": True}],
                    }
                ],
            }
        ),
        _item({"name": "com.other/thing", "remotes": [{"type": "sse", "url": "https://other.example/sse"}]}),
    ]


class Registry:
    """GET /v0/servers over `items`, two per page, as the MCP Registry API pages."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.requests: list[dict[str, list[str]]] = []
        self.log: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                url = urlparse(self.path)
                query = parse_qs(url.query)
                registry.requests.append(query)
                if url.path != "/v0/servers":
                    self.send_error(404)
                    return
                start = int(query.get("cursor", ["0"])[0])
                page = registry.items[start : start + 2]
                more = start + 2 < len(registry.items)
                body = {
                    "servers": page,
                    "metadata": {"count": len(page), **({"nextCursor": str(start + 2)} if more else {})},
                }
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                registry.log.append(format % args)  # kept here rather than on stderr

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def registry() -> Iterator[Registry]:
    served = Registry(catalog("http://127.0.0.1:9/mcp"))
    yield served
    served.close()


@pytest.mark.django_db
def test_registry_servers_are_registered_and_the_ones_needing_secrets_reported(registry: Registry) -> None:
    result = sync(registry.url, ("io.github.acme/*",))
    assert sorted(result.created) == [
        "io-github-acme-everything",
        "io-github-acme-legacy",
        "io-github-acme-time",
    ]
    assert result.errors == {
        "io.github.acme/files": "argument directory is required and has no value",
        "io.github.acme/weather": "header Authorization is required and has no value",
    }
    assert len(registry.requests) == 4  # 7 entries, 2 per page, followed by the cursor
    assert registry.requests[0]["version"] == ["latest"]

    servers = {s.id: s for s in MCPServer.objects.filter(source="registry")}
    everything = servers["io-github-acme-everything"]
    assert (everything.name, everything.transport, everything.url) == (
        "Everything",
        "streamable_http",
        "http://127.0.0.1:9/mcp",
    )
    time = servers["io-github-acme-time"]
    assert (time.command, time.args, time.env) == (
        "uvx",
        ["mcp-server-time==2026.10.19", "--local-timezone", "UTC"],
        {"TZ_DEBUG": "0"},
    )
    legacy = servers["io-github-acme-legacy"]
    assert (legacy.transport, legacy.headers) == ("sse", {"X-Team": "blue"})

    # The registry drops a server: it is disabled, not deleted; the others are unchanged.
    registry.items = [i for i in registry.items if i["server"]["name"] != "io.github.acme/legacy"]
    again = sync(registry.url, ("io.github.acme/*",))
    assert again.updated == ["io-github-acme-legacy"] and again.created == []
    assert not MCPServer.objects.get(id="io-github-acme-legacy").enabled


def test_an_entry_with_only_a_templated_url_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="needs values only you can supply"):
        entry_for(
            {"name": "x", "remotes": [{"type": "streamable-http", "url": "https://{tenant}.example/mcp"}]}
        )
    with pytest.raises(ValueError, match="package type 'cargo' is not supported"):
        entry_for({"name": "x", "packages": [{"registryType": "cargo", "identifier": "x"}]})


@pytest.mark.django_db
def test_an_unreachable_or_broken_registry_is_a_clear_error() -> None:
    with pytest.raises(RegistryError, match="127.0.0.1:9/v0/servers"):
        sync("http://127.0.0.1:9")
    broken = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, text="<html>")))
    with pytest.raises(RegistryError, match="not JSON"):
        sync("http://registry.test", client=broken)
    down = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    with pytest.raises(RegistryError, match="HTTP 503"):
        sync("http://registry.test", client=down)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything")
async def test_the_gateway_connects_the_servers_of_the_configured_registry(
    tmp_path: Path, settings: Any
) -> None:
    port = free_port()
    proc = await everything_over_http(port)
    served = Registry([catalog(f"http://127.0.0.1:{port}/mcp")[1]])
    config = tmp_path / "mission_control.yml"
    config.write_text(json.dumps({"mcps": {"registry": {"url": served.url, "include": ["io.github.*"]}}}))
    settings.MC_CONFIG_PATH = str(config)
    gateway = Gateway(Backoff(0.2, 0.5))
    try:
        await gateway.start()
        await until(lambda: status("io-github-acme-everything") == "connected", what="the registry's server")
        echo = await api(
            "POST", "/api/mcps/io-github-acme-everything/tools/echo/call", {"arguments": {"message": "reg"}}
        )
        assert echo.json()["result"]["content"][0]["text"] == "Echo: reg"
        server = await sync_to_async(MCPServer.objects.get)(id="io-github-acme-everything")
        assert server.source == "registry"
    finally:
        await gateway.stop()
        served.close()
        proc.kill()
        proc.wait(10)
